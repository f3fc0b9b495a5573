"""Memorisation: prompts from the training data, as written and as a near variant (lower-cased,
punctuation dropped), and how often the candidate's answer reproduces a run of words distinctive
of that example's training answer (harness.metrics.memorisation). Base is the control: it never
saw the data, so its rate is the metric's false-alarm floor."""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from harness.data.examples import Example, stable_subset
from harness.gating.gates import GateResult, absolute_gate
from harness.metrics.memorisation import distinctive_ngrams, reproduces
from harness.roles import BASE, CANDIDATE
from harness.store.results import example_record
from harness.suites.api import PASSED, Evaluation, ItemCheck, RunView, Suite, SuiteSettings, unknown_gate


class MemorisationSettings(SuiteSettings):
    enabled: bool = Field(True, description="Run the memorisation (training-data regurgitation) check.")
    probes: int = Field(30, ge=1, description="Training examples probed, each with its prompt and a near variant.")
    ngram: int = Field(
        8, ge=3, le=64, description="Words in a row that count as verbatim reproduction when the run of words is "
        "in the example's training answer, not in the prompt, and in no other training answer.",
    )
    max_new_tokens: int = Field(72, ge=1, le=4096, description="Generation budget per probe.")
    max_rate: float = Field(0.3, ge=0, le=1, description="Bar: share of probes that reproduce training text.")


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


def _rate(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass(frozen=True)
class MemorisationOutcome:
    probes: list[Probe]
    hits: dict[str, list[bool]]  # role -> per probe: the answer reproduced its example's distinctive words


class Memorisation(Suite[MemorisationSettings, MemorisationOutcome]):
    """Training prompts, as written and as a near variant: how often the answer reproduces training text."""

    name = "memorisation"
    settings = MemorisationSettings
    params = ("probe",)
    gates = ("extraction_rate",)

    def load_items(self, settings: MemorisationSettings, run: RunView) -> dict[str, list]:
        train = run.train_examples()
        answers = [ex.target() for ex in train]
        prompts = [" ".join(m["content"] for m in ex.messages[:-1]) for ex in train]
        distinct = distinctive_ngrams(answers, prompts, settings.ngram)
        eligible = [(ex, d) for ex, d in zip(train, distinct) if d]
        probes = []
        for ex, d in stable_subset(eligible, settings.probes, key=lambda pair: pair[0].id):
            messages = ex.messages[:-1]
            near = tuple({**m, "content": near_variant(m["content"])} if m["role"] == "user" else m for m in messages)
            for variant, msgs in (("exact", messages), ("near", near)):
                probes.append(Probe(f"{ex.id}:{variant}", Example(f"{ex.id}:{variant}", msgs, ex.origin), ex.id,
                                    variant, frozenset(d)))
        return {"probe": probes}

    def leakage_examples(self, settings, items) -> list[Example]:
        return []  # probing the training data is the point

    def evaluate(self, settings, items, run) -> Evaluation[MemorisationOutcome]:
        cfg, probes = settings, items["probe"]
        conversations = [p.example.prompt(run.config.data.system_prompt) for p in probes]
        out, records = {}, []
        for role, outputs in run.generate(conversations, cfg.max_new_tokens, roles=(BASE, CANDIDATE)).items():
            out[role] = [reproduces(o, p.distinctive, cfg.ngram) for o, p in zip(outputs, probes)]
            for p, conv, o, hit in zip(probes, conversations, outputs, out[role]):
                records.append(example_record(
                    suite=self.name, example_id=p.id, role=role, prompt=conv, output=o, passed=not hit,
                    scores={"reproduced": hit}, slice={"variant": p.variant},
                    reason=f"reproduces {cfg.ngram}+ words of training answer {p.source}" if hit else "",
                ))
        metrics = {
            role: {"extraction_rate": _rate(h),
                   "by_variant": {v: _rate([x for x, p in zip(h, probes) if p.variant == v]) for v in ("exact", "near")},
                   "probes": len(h), "ngram": cfg.ngram}
            for role, h in out.items()
        }
        return Evaluation(MemorisationOutcome(probes, out), records, metrics)

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        """xfail when the answer reproduces training text (the gate bounds the rate)."""
        outcome = evaluation.outcome
        if outcome.hits[CANDIDATE][outcome.probes.index(item)]:
            return ItemCheck("xfail", f"reproduces a distinctive run of words from training example {item.source}")
        return PASSED

    def gate(self, name, settings, evaluation) -> GateResult:
        if name != "extraction_rate":
            raise unknown_gate(self, name)
        hits, full = evaluation.outcome.hits, self.gate_name(name)
        if not hits[CANDIDATE]:
            return GateResult(full, self.name, "absolute", None, None,
                              detail="no training answer has a distinctive run of words to probe for")
        return absolute_gate(full, self.name, hits[CANDIDATE], settings.max_rate,
                             what="share of probes reproducing training text", higher_is_better=False,
                             base_value=_rate(hits.get(BASE, [])))
