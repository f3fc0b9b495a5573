"""Memorisation: prompts from the training data, as written and as a near variant (lower-cased,
punctuation dropped), and how often the candidate's answer reproduces a run of words distinctive
of that example's training answer (harness.metrics.memorisation). Base is the control: it never
saw the data, so its rate is the metric's false-alarm floor."""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.data import Example, stable_subset
from harness.engine import BASE
from harness.gates import GateResult, absolute_gate
from harness.metrics.memorisation import distinctive_ngrams, reproduces
from harness.results import example_record

NAME = "memorisation"
ITEMS = ("probe",)
GATES = ("extraction_rate",)


@dataclass(frozen=True)
class Probe:
    id: str
    example: Example  # the prompt to answer
    source: str  # id of the training example
    variant: str  # "exact" | "near"
    distinctive: frozenset


def near_variant(text: str) -> str:
    """Same words, lower-cased, without punctuation: a near copy a memorising model still completes."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def enabled(config) -> bool:
    return config.suites.memorisation.enabled


def data_paths(config) -> dict:
    return {}  # probes come from the training data, which is hashed already


def items(session) -> dict[str, list]:
    cfg = session.config.suites.memorisation
    train, _ = session.splits
    answers = [ex.target() for ex in train]
    prompts = [" ".join(m["content"] for m in ex.messages[:-1]) for ex in train]
    distinct = distinctive_ngrams(answers, prompts, cfg.ngram)
    eligible = [(ex, d) for ex, d in zip(train, distinct) if d]
    probes = []
    for ex, d in stable_subset(eligible, cfg.probes, key=lambda pair: pair[0].id):
        messages = ex.messages[:-1]
        near = tuple({**m, "content": near_variant(m["content"])} if m["role"] == "user" else m for m in messages)
        for variant, msgs in (("exact", messages), ("near", near)):
            probes.append(Probe(f"{ex.id}:{variant}", Example(f"{ex.id}:{variant}", msgs, ex.origin), ex.id, variant,
                                frozenset(d)))
    return {"probe": probes}


def leakage_examples(session) -> list[Example]:
    return []  # probing the training data is the point


def evaluate(session) -> dict[str, list[bool]]:
    cfg = session.config.suites.memorisation
    probes = session.suite_items(NAME)["probe"]
    conversations = [p.example.prompt(session.config.data.system_prompt) for p in probes]
    engine = session.engine()
    roles = {r: e for r, e in session.roles().items() if r in (BASE, "candidate")}
    out = {}
    for role, engine_role in roles.items():
        outputs = engine.generate(engine_role, conversations, cfg.max_new_tokens)
        out[role] = [reproduces(o, p.distinctive, cfg.ngram) for o, p in zip(outputs, probes)]
        for p, conv, o, hit in zip(probes, conversations, outputs, out[role]):
            session.records.append(example_record(
                suite=NAME, example_id=p.id, role=role, prompt=conv, output=o, passed=not hit,
                scores={"reproduced": hit}, slice={"variant": p.variant},
                reason=f"reproduces {cfg.ngram}+ words of training answer {p.source}" if hit else "",
            ))
    session.suite_metrics[NAME] = {
        role: {"extraction_rate": _rate(h),
               "by_variant": {v: _rate([x for x, p in zip(h, probes) if p.variant == v]) for v in ("exact", "near")},
               "probes": len(h), "ngram": cfg.ngram}
        for role, h in out.items()
    }
    return out


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def gate(name: str, outcome: dict[str, list[bool]], session) -> GateResult:
    if name != "extraction_rate":
        raise KeyError(f"unknown memorisation gate {name!r}")
    if not outcome["candidate"]:
        return GateResult(f"{NAME}.{name}", NAME, "absolute", None, None,
                          detail="no training answer has a distinctive run of words to probe for")
    return absolute_gate(f"{NAME}.{name}", NAME, outcome["candidate"], session.config.suites.memorisation.max_rate,
                         what="share of probes reproducing training text", higher_is_better=False,
                         base_value=_rate(outcome.get(BASE, [])))
