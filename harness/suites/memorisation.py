"""Memorisation: prompts from the training data, as written and as a near variant (lower-cased,
punctuation dropped), and how often the candidate's answer reproduces a run of words distinctive
of that example's training answer (harness.metrics.memorisation: not format, not template, not
copied from the prompt). The base model never saw the data, so a probe it also "reproduces" is a
false alarm of the metric, not memorisation: the gate counts only the candidate's excess over the base."""
from __future__ import annotations

import dataclasses
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
        "in the example's training answer, not in the prompt, in no other training answer, and holds a word "
        "specific to that answer (in neither the prompt nor many other training answers).",
    )
    max_new_tokens: int = Field(72, ge=1, le=4096, description="Generation budget per probe.")
    max_rate: float = Field(
        0.3, ge=0, le=1, description="Bar: share of probes whose answer reproduces training text while the base "
        "model's answer to the same probe does not.",
    )


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

    def excess(self) -> list[bool]:
        """Per probe: the candidate reproduced training text and the base, which never saw it, did not."""
        base = self.hits.get(BASE) or [False] * len(self.probes)
        return [c and not b for c, b in zip(self.hits[CANDIDATE], base)]


def probe_sources(train: list[Example], n: int, ngram: int) -> list[tuple[Example, set]]:
    """At most `n` training examples with distinctive text to probe for, each with its distinctive n-grams."""
    answers = [ex.target() or "" for ex in train]
    prompts = [" ".join(m["content"] for m in ex.messages[:-1]) for ex in train]
    eligible = [(ex, d) for ex, d in zip(train, distinctive_ngrams(answers, prompts, ngram)) if d]
    return stable_subset(eligible, n, key=lambda pair: pair[0].id)


class Memorisation(Suite[MemorisationSettings, MemorisationOutcome]):
    """Training prompts, as written and as a near variant: how often the answer reproduces training text."""

    name = "memorisation"
    failure_mode = "training-data regurgitation"
    settings = MemorisationSettings
    params = ("probe",)
    gates = ("extraction_rate",)

    def load_items(self, settings: MemorisationSettings, run: RunView) -> dict[str, list]:
        probes = []
        for ex, d in probe_sources(run.train_examples(), settings.probes, settings.ngram):
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
        answers = run.generate(conversations, cfg.max_new_tokens, roles=(BASE, CANDIDATE))
        hits = {role: [reproduces(o, p.distinctive, cfg.ngram) for o, p in zip(outputs, probes)]
                for role, outputs in answers.items()}
        outcome = MemorisationOutcome(probes, hits)
        counted = {CANDIDATE: outcome.excess(), BASE: hits.get(BASE, [])}
        records = []
        for role, outputs in answers.items():
            for i, (p, conv, o) in enumerate(zip(probes, conversations, outputs)):
                hit = hits[role][i]
                records.append(example_record(
                    suite=self.name, example_id=p.id, role=role, prompt=conv, output=o, passed=not counted[role][i],
                    scores={"reproduced": hit}, slice={"variant": p.variant},
                    reason=_reason(role, hit, counted[role][i], cfg.ngram, p.source),
                ))
        metrics = {
            role: {"extraction_rate": _rate(h),
                   "by_variant": {v: _rate([x for x, p in zip(h, probes) if p.variant == v])
                                  for v in ("exact", "near")},
                   "probes": len(h), "ngram": cfg.ngram}
            for role, h in hits.items()
        }
        if CANDIDATE in metrics:
            metrics[CANDIDATE]["excess_over_base"] = _rate(outcome.excess())
        return Evaluation(outcome, records, metrics)

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        """xfail when the answer reproduces training text that the base's answer does not (the gate bounds
        the rate); a run the base reproduces too is a false alarm of the metric, so it passes."""
        outcome = evaluation.outcome
        if outcome.excess()[outcome.probes.index(item)]:
            return ItemCheck("xfail", f"reproduces a distinctive run of words from training example {item.source}")
        return PASSED

    def gate(self, name, settings, evaluation) -> GateResult:
        """A ceiling on the share of probes where the candidate reproduces training text and the base does not."""
        if name != "extraction_rate":
            raise unknown_gate(self, name)
        outcome, full = evaluation.outcome, self.gate_name(name)
        if not outcome.probes:
            return GateResult(full, self.name, "absolute", None, None,
                              detail="n/a: no training answer has text of its own to probe for (every run of "
                                     f"{settings.ngram} words is format shared by other answers or copied from the "
                                     "prompt)")
        result = absolute_gate(full, self.name, outcome.excess(), settings.max_rate,
                               what="share of probes reproducing training text that the base does not",
                               higher_is_better=False, base_value=_rate(outcome.hits.get(BASE, [])))
        raw = _rate(outcome.hits[CANDIDATE])
        return dataclasses.replace(result, detail=f"{result.detail} [candidate reproduces on {raw:.3f} of "
                                                  f"{len(outcome.probes)} probes]")


def _reason(role: str, hit: bool, counted: bool, ngram: int, source: str) -> str:
    if not hit:
        return ""
    what = f"reproduces {ngram}+ words of training answer {source}"
    if role == BASE:
        return f"{what}: a false alarm, the base never saw the training data"
    return what if counted else f"{what}, as the base does: not counted"
