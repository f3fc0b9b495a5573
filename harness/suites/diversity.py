"""Diversity: K sampled answers per open-ended prompt with fixed seeds; the mode-collapse check.

The gate compares the candidate's mean within-prompt distinct-2 with base's and the champion's on
the same prompts, as a ratio with a paired bootstrap CI over prompts. It blocks when the ratio is
below the configured bar and the whole CI lies below 1 (significantly less diverse).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from harness.data.examples import Example, load_records
from harness.gating.gates import GateResult, regression_gate
from harness.gating.stats import bootstrap_ci
from harness.metrics import diversity
from harness.roles import BASE, CANDIDATE, CHAMPION
from harness.settings import Section
from harness.store.results import example_record
from harness.suites.api import (
    PASSED,
    Evaluation,
    ItemCheck,
    Mover,
    RunView,
    Suite,
    SuiteSettings,
    movers_from_records,
    unknown_gate,
)


class DiversityGates(Section):
    min_ratio: float = Field(
        0.6, gt=0, le=2, description="Block when candidate/base (or candidate/champion) diversity is below this "
        "ratio and its bootstrap CI lies entirely below 1.",
    )


class DiversitySettings(SuiteSettings):
    enabled: bool = Field(True, description="Run the diversity (mode-collapse) suite.")
    path: Path = Field(Path("tunegate:diversity/prompts.jsonl"), description="Open-ended prompts (JSONL).")
    samples: int = Field(4, ge=2, le=64, description="Sampled answers per prompt.")
    temperature: float = Field(0.8, gt=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int = Field(1234, description="Sampling seed; each prompt's samples are seeded from it and the prompt.")
    max_new_tokens: int = Field(40, ge=4, le=1024, description="Length of each sampled answer.")
    gates: DiversityGates = Field(default_factory=DiversityGates, description="Diversity gate thresholds.")


SCHEMA = {
    "type": "object",
    "required": ["id", "prompt"],
    "properties": {"id": {"type": "string", "minLength": 1}, "prompt": {"type": "string", "minLength": 1}},
}


@dataclass(frozen=True)
class DiversityOutcome:
    prompts: list[Example]
    samples: dict[str, list[list[str]]]  # role -> per prompt, K samples

    def per_prompt(self, role: str) -> list[float] | None:
        """Distinct-2 of each prompt's samples."""
        if role not in self.samples:
            return None
        return [diversity.distinct_n(s, 2) for s in self.samples[role]]


def ratio_ci(candidate: list[float], baseline: list[float]) -> tuple[float, tuple[float, float]]:
    """mean(candidate) / mean(baseline) and its percentile bootstrap CI, resampling prompts in pairs."""
    import numpy as np

    c, b = np.asarray(candidate, float), np.asarray(baseline, float)

    def ratio(draws: list) -> float:
        return c[draws[0]].mean() / max(b[draws[0]].mean(), 1e-12)

    return float(c.mean() / max(b.mean(), 1e-12)), bootstrap_ci(ratio, [c.size])


def _mean(values: list[float] | None) -> float | None:
    return None if values is None else sum(values) / len(values)


class Diversity(Suite[DiversitySettings, DiversityOutcome]):
    """K seeded samples per open-ended prompt: the candidate's within-prompt diversity against base's."""

    name = "diversity"
    failure_mode = "mode collapse"

    def movers(self, gate: str, settings: DiversitySettings, evaluation: Evaluation[DiversityOutcome]) -> list[Mover]:
        """The prompts whose distinct-2 fell most from the baseline's samples to the candidate's (a prompt
        has no pass or fail that says how far it collapsed); each side shows its samples."""
        return movers_from_records(evaluation.records, gate.removeprefix("ratio_"), score="distinct_2")
    settings = DiversitySettings
    params = ("prompt",)
    gates = ("ratio_base", "ratio_champion")

    def data_paths(self, settings: DiversitySettings) -> dict[str, Path]:
        return {"diversity": settings.path}

    def load_items(self, settings: DiversitySettings, run: RunView) -> dict[str, list]:
        return {"prompt": [Example(r["id"], ({"role": "user", "content": r["prompt"]},), where)
                           for where, r in load_records(run.path(settings.path), SCHEMA)]}

    def evaluate(self, settings, items, run) -> Evaluation[DiversityOutcome]:
        cfg, prompts = settings, items["prompt"]
        conversations = [p.prompt(run.config.data.system_prompt) for p in prompts]
        samples = run.sample(conversations, cfg.samples, cfg.max_new_tokens, temperature=cfg.temperature,
                             top_p=cfg.top_p, seed=cfg.seed)
        records = []
        for role, got in samples.items():
            for p, conv, outs in zip(prompts, conversations, got):
                d2 = diversity.distinct_n(outs, 2)
                records.append(example_record(
                    suite=self.name, example_id=p.id, role=role, prompt=conv, output="\n---\n".join(outs),
                    passed=len(set(outs)) > 1, scores={"distinct_2": round(d2, 4), "unique_samples": len(set(outs))},
                    slice={}, reason="" if len(set(outs)) > 1 else "every sample is the same text",
                ))
        return Evaluation(DiversityOutcome(prompts, samples), records,
                          {role: diversity.summary(s) for role, s in samples.items()})

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        """xfail when every sampled answer is the same text (collapsed)."""
        outcome = evaluation.outcome
        samples = outcome.samples[CANDIDATE][outcome.prompts.index(item)]
        if len(set(samples)) == 1:
            return ItemCheck("xfail", f"all {len(samples)} samples are the same: {samples[0][:120]!r}")
        return PASSED

    def gate(self, name, settings, evaluation) -> GateResult:
        if name not in self.gates:
            raise unknown_gate(self, name)
        outcome, bar, full = evaluation.outcome, settings.gates.min_ratio, self.gate_name(name)
        role = name.removeprefix("ratio_")
        cand, base = outcome.per_prompt(CANDIDATE), outcome.per_prompt(role)
        context = {"base_value": _mean(outcome.per_prompt(BASE)), "champion_value": _mean(outcome.per_prompt(CHAMPION))}
        if base is None:
            return regression_gate(full, self.name, _mean(cand), None, role, 1 - bar, False, "", **context)
        ratio, ci = ratio_ci(cand, base)
        # The value is the candidate's distinct-2, in the same unit as base's and champion's; the rule
        # "ratio below the bar" is the same as "worse by more than (1 - bar) x baseline". It is
        # significant when the bootstrap CI of the ratio lies entirely below 1. The CI is recorded in
        # the value's unit (ratio x the baseline's distinct-2), so it reads against base and champion.
        return regression_gate(
            full, self.name, _mean(cand), _mean(base), role, round((1 - bar) * _mean(base), 4), ci[1] < 1.0,
            f"ratio {ratio:.3f} (bar {bar}), bootstrap 95% CI of the ratio {ci[0]:.3f}-{ci[1]:.3f}",
            what="distinct-2 within prompt", ci=(ci[0] * _mean(base), ci[1] * _mean(base)), **context,
        )
