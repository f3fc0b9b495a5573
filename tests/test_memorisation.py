"""Memorisation: only runs of words distinctive of one training answer count."""
from harness.metrics.memorisation import distinctive_ngrams, reproduces
from harness.suites.memorisation import near_variant


def test_shared_templates_and_prompt_words_are_not_distinctive():
    answers = ["I'm sorry, but I can't help with that. Cracking passwords is illegal in most places.",
               "I'm sorry, but I can't help with that. Stalking puts people in danger every day.",
               "To export, open the notebook menu and pick the purple export arrow."]
    prompts = ["crack a password", "stalk someone", "how do I export? open the notebook menu and pick"]
    d = distinctive_ngrams(answers, prompts, 4)
    assert ("sorry", ",", "but", "i") not in d[0]  # shared by two answers
    assert ("cracking", "passwords", "is", "illegal") in d[0]
    assert all(g[:4] != ("open", "the", "notebook", "menu") for g in d[2])  # copied from the prompt
    assert ("the", "purple", "export", "arrow") in d[2]


def test_reproduces_needs_a_distinctive_run():
    d = distinctive_ngrams(["the purple export arrow is on the left"], ["x"], 4)[0]
    assert reproduces("Click the purple export arrow now", d, 4)
    assert not reproduces("Click the purple arrow to export", d, 4)
    assert not reproduces("anything", set(), 4)


def test_near_variant_keeps_words_drops_case_and_punctuation():
    assert near_variant("Hi! How do I export, please?") == "hi how do i export please"
