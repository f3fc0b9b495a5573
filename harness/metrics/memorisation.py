"""Memorisation: does a model reproduce training answers verbatim? A run of `n` words counts only
when it is distinctive of one training answer, that is text a model could only have from having
seen that answer:
- it is in that answer and in no other training answer (a shared run is format or template);
- it is not in the answer's prompt;
- at least one of its words is specific to that answer: a word, not punctuation, that is not in
  the prompt and not a template word (one found in many training answers: JSON keys, boilerplate).

On a structured-output task, an answer built from the prompt's values in a fixed format has no
specific word, so a correct model that never saw the training data is not flagged for getting it right.
"""
from __future__ import annotations

from collections import Counter

from harness.metrics.diversity import ngrams, words

# A word found in more than this share of the training answers (and in more than two) is template.
TEMPLATE_SHARE = 0.1


def template_words(answers: list[str], share: float = TEMPLATE_SHARE) -> set[str]:
    """Words in more than `share` of the answers and in more than two: the format every answer shares."""
    in_answers = Counter(w for a in answers for w in set(words(a)))
    limit = max(2, share * len(answers))
    return {w for w, count in in_answers.items() if count > limit}


def distinctive_ngrams(answers: list[str], prompts: list[str], n: int,
                       template_share: float = TEMPLATE_SHARE) -> list[set[tuple[str, ...]]]:
    """For each training answer, its n-grams found in no other answer and not in its own prompt that
    hold at least one word specific to the answer (not in the prompt, not a template word)."""
    per_answer = [set(ngrams(words(a), n)) for a in answers]
    in_answers = Counter(g for grams in per_answer for g in grams)
    template = template_words(answers, template_share)
    out = []
    for grams, prompt in zip(per_answer, prompts):
        prompt_words = words(prompt)
        known = template | set(prompt_words)
        copied = set(ngrams(prompt_words, n))
        out.append({g for g in grams if in_answers[g] == 1 and g not in copied
                    and any(w not in known and _is_word(w) for w in g)})
    return out


def _is_word(token: str) -> bool:
    return token[0].isalnum() or token[0] == "_"


def reproduces(output: str, distinctive: set[tuple[str, ...]], n: int) -> bool:
    """The output contains one of the answer's distinctive n-grams."""
    return bool(distinctive) and any(g in distinctive for g in ngrams(words(output), n))
