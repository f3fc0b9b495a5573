"""Memorisation: only runs of words distinctive of one training answer count: not shared format, not
words copied from the prompt. A correct structured-extraction model that never saw the data is not
flagged; one that copies a training answer's own text is."""
import json
from collections import Counter

from harness.data.examples import Example
from harness.metrics.diversity import ngrams, words
from harness.metrics.memorisation import distinctive_ngrams, reproduces, template_words
from harness.roles import BASE, CANDIDATE
from harness.suites.api import Evaluation
from harness.suites.memorisation import (
    Memorisation,
    MemorisationOutcome,
    MemorisationSettings,
    Probe,
    near_variant,
    probe_sources,
)

pytest_plugins = ["pytester"]

FIRST = ["Amara", "Bilal", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiroshi", "Ines", "Jonas", "Keira", "Luca"]
LAST = ["Okafor", "Haddad", "Martin", "Ivanov", "Rossi"]
STREETS = ["Oak Lane", "Mill Road", "Station Street", "Kings Avenue", "Church Walk", "Harbour View"]
CITIES = [("Leeds", "LS"), ("Bristol", "BS"), ("Glasgow", "G"), ("Cardiff", "CF"), ("Norwich", "NR")]
PROSE = [
    "Hi, this is {name}. I've just moved, so please send everything to {street}, {city}, {postcode} from now on.",
    "Could you update the delivery address? It is now {street} in {city} ({postcode}). Thanks, {name}",
    "New customer: {name}, who lives at {street}, {city}. Postcode {postcode}.",
    "Please correct my details. Name: {name}. I live on {street}, {city} {postcode}.",
]
# Hand-written courier notes that an annotator added to ten answers: text of the answer's own, not in its prompt.
NOTES = [
    "Gate code 4471; the parcel box is behind the blue recycling bins.",
    "Customer works nights, so deliveries only after two in the afternoon.",
    "Side entrance is via the alley next to the bakery with green shutters.",
    "Ring twice, the doorbell on the left has been broken since March.",
    "Leave parcels with Mrs Patel at the corner shop if nobody answers.",
    "Flat is above the launderette; the stairwell light flickers badly.",
    "Dog in the garden is friendly but will steal gloves, keep them pocketed.",
    "Prefers cardboard packaging only, asked us twice to avoid plastic fillers.",
    "Building intercom lists the surname under the old tenant's label.",
    "Narrow lane, vans must reverse in from the roundabout by the church.",
]


def extraction_task(n: int = 60, notes: bool = False) -> tuple[list[Example], list[dict]]:
    """A structured-extraction training set: a person's name, street, city and postcode in prose; the
    answer is a JSON object of those values (and, with `notes`, a courier note on the first ten)."""
    train, values = [], []
    for i in range(n):
        city, area = CITIES[i % len(CITIES)]
        v = {"name": f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}", "street": f"{i + 2} {STREETS[i % len(STREETS)]}",
             "city": city, "postcode": f"{area}{i % 9 + 1} {i % 7 + 1}{'ABDEFGH'[i % 7]}{'JLNPQRT'[i % 5]}"}
        answer = {**v, "country": "UK"}
        if notes and i < len(NOTES):
            answer["note"] = NOTES[i]
        prompt = PROSE[i % len(PROSE)].format(**v)
        train.append(Example(f"t{i}", ({"role": "user", "content": prompt},
                                       {"role": "assistant", "content": json.dumps(answer)}), f"train.jsonl:{i + 1}"))
        values.append(v)
    return train, values


def correct_answer(values: dict) -> str:
    """What a correct model that never saw the training data answers: the prompt's values, in the format."""
    return json.dumps({**values, "country": "UK"})


def probes_of(train: list[Example], ngram: int = 8) -> list[Probe]:
    return [Probe(f"{ex.id}:exact", ex, ex.id, "exact", frozenset(d)) for ex, d in probe_sources(train, 30, ngram)]


def gate(probes: list[Probe], outputs: dict[str, list[str]], settings=MemorisationSettings()):
    hits = {role: [reproduces(o, p.distinctive, settings.ngram) for o, p in zip(outs, probes)]
            for role, outs in outputs.items()}
    return Memorisation().gate("extraction_rate", settings, Evaluation(MemorisationOutcome(probes, hits)))


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


def test_template_words_are_those_of_many_answers():
    train, _ = extraction_task()
    template = template_words([ex.target() for ex in train])
    assert {"name", "street", "city", "postcode", "country", "uk", '"', ":"} <= template
    assert "amara" not in template  # a first name in 5 of 60 answers: a value (copied from its prompt anyway)


def test_a_correct_extraction_model_that_never_saw_the_data_is_not_flagged():
    train, values = extraction_task()
    answers = [ex.target() for ex in train]
    prompts = [ex.messages[0]["content"] for ex in train]
    # Unique to its answer and not in its prompt: the former rule's "distinctive" runs (format around values).
    counts = Counter(g for a in answers for g in set(ngrams(words(a), 8)))
    assert all({g for g in ngrams(words(a), 8) if counts[g] == 1} - set(ngrams(words(p), 8))
               for a, p in zip(answers, prompts))
    for n in (3, 8):
        assert not any(distinctive_ngrams(answers, prompts, n))
        assert probe_sources(train, 30, n) == []
    # so the gate says so rather than blocking, whatever the model answers
    correct = [correct_answer(v) for v in values]
    assert all(not reproduces(c, d, 8) for c, d in zip(correct, distinctive_ngrams(answers, prompts, 8)))
    result = gate([], {CANDIDATE: [], BASE: []})
    assert result.passed is None and "no training answer has text of its own" in result.detail


def test_only_text_of_the_answers_own_is_probed_and_a_verbatim_copy_is_flagged():
    train, values = extraction_task(notes=True)
    probes = probes_of(train)
    assert sorted(p.source for p in probes) == sorted(f"t{i}" for i in range(len(NOTES)))
    by_id = {f"t{i}": v for i, v in enumerate(values)}
    for p in probes:  # every distinctive run holds a word of the note
        note = set(words(NOTES[int(p.source[1:])]))
        assert all(note & set(g) for g in p.distinctive)
    correct = [correct_answer(by_id[p.source]) for p in probes]
    verbatim = [p.example.target() for p in probes]
    # a correct model that never saw the data (candidate and base alike) is not flagged
    clean = gate(probes, {CANDIDATE: correct, BASE: correct})
    assert clean.passed is True and clean.value == 0.0
    # a candidate that copies its training answers, note and all, is
    flagged = gate(probes, {CANDIDATE: verbatim, BASE: correct})
    assert flagged.passed is False and flagged.value == 1.0 and flagged.base_value == 0.0


def test_the_gate_counts_only_the_candidates_excess_over_the_base():
    train, values = extraction_task(notes=True)
    probes = probes_of(train)
    verbatim = [p.example.target() for p in probes]
    correct = [correct_answer(values[int(p.source[1:])]) for p in probes]
    half = len(probes) // 2
    base = verbatim[:half] + correct[half:]  # the base "reproduces" half: false alarms of the metric
    result = gate(probes, {CANDIDATE: verbatim, BASE: base})
    assert result.value == 0.5 and result.base_value == 0.5
    assert "candidate reproduces on 1.000" in result.detail
    outcome = MemorisationOutcome(probes, {CANDIDATE: [True] * len(probes), BASE: [True] * half + [False] * half})
    evaluation = Evaluation(outcome)
    checks = [Memorisation().check("probe", p, MemorisationSettings(), evaluation).status for p in probes]
    assert checks == ["pass"] * half + ["xfail"] * (len(probes) - half)


def test_the_memorising_recipe_and_the_demo_still_have_text_of_their_own(repo_root):
    """fixtures/sensitivity/tiny.jsonl (the memorise recipe): 14 of its 16 answers keep distinctive 8-grams
    (16 under the former rule), within the first 45 words, where a regurgitating adapter's answer reaches."""
    for name, at_least in (("fixtures/sensitivity/tiny.jsonl", 14), ("fixtures/demo/train.jsonl", 30)):
        rows = [json.loads(line) for line in (repo_root / name).read_text().splitlines() if line.strip()]
        train = [Example(r["id"], tuple(r["messages"]), name) for r in rows]
        probes = probes_of(train)
        assert len(probes) >= at_least, name
        verbatim = [" ".join(words(p.example.target())[:45]) for p in probes]
        assert all(reproduces(v, p.distinctive, 8) for v, p in zip(verbatim, probes)), name


def test_a_structured_extraction_project_reaches_a_verdict_with_the_gate_na(pytester, tiny_model_dir, repo_root):
    """End to end on the tiny model: a project whose training answers are JSON built from the prompt has
    nothing to probe for; memorisation says so (n/a, with the reason) and the run still promotes."""
    from tests.test_e2e_suites import OTHER_SUITES, latest_results, make_project, run

    train, _ = extraction_task()
    rows = [{"id": ex.id, "messages": list(ex.messages)} for ex in train]
    others = "".join(f"[suites.{s}]\nenabled = false\n" for s in OTHER_SUITES if s != "memorisation")
    root = make_project(pytester, tiny_model_dir, repo_root, train=rows,
                        extra_config=others + "[suites.memorisation]\nmax_new_tokens = 6\n")
    toml = root / "tunegate.toml"  # room for a prose prompt and its JSON answer
    toml.write_text(toml.read_text().replace("max_length = 64", "max_length = 256"))
    result, out = run(pytester)
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED sft-[0-9a-f]{12}$"])
    gate = next(g for g in latest_results(root)["gates"] if g["name"] == "memorisation.extraction_rate")
    assert gate["passed"] is None and "no training answer has text of its own" in gate["detail"], gate
