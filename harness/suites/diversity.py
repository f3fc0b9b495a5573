"""Diversity: K sampled answers per open-ended prompt with fixed seeds; the mode-collapse check.

The gate compares the candidate's mean within-prompt distinct-2 with base's and the champion's on
the same prompts, as a ratio with a paired bootstrap CI over prompts. It blocks when the ratio is
below the configured bar and the whole CI lies below 1 (significantly less diverse).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.data import Example, load_records
from harness.gates import GateResult, regression_gate
from harness.metrics import diversity
from harness.results import example_record

NAME = "diversity"
ITEMS = ("prompt",)
GATES = ("ratio_base", "ratio_champion")
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


def enabled(config) -> bool:
    return config.suites.diversity.enabled


def data_paths(config) -> dict:
    return {"diversity": config.suites.diversity.path}


def items(session) -> dict[str, list]:
    path = session.config.path(session.config.suites.diversity.path)
    return {"prompt": [Example(r["id"], ({"role": "user", "content": r["prompt"]},), where)
                       for where, r in load_records(path, SCHEMA)]}


def leakage_examples(session) -> list[Example]:
    return session.suite_items(NAME)["prompt"]


def evaluate(session) -> DiversityOutcome:
    cfg = session.config.suites.diversity
    prompts = session.suite_items(NAME)["prompt"]
    conversations = [p.prompt(session.config.data.system_prompt) for p in prompts]
    engine = session.engine()
    samples = {}
    for role, engine_role in session.roles().items():
        samples[role] = engine.sample(engine_role, conversations, cfg.samples, cfg.max_new_tokens,
                                      temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed)
        for p, conv, outs in zip(prompts, conversations, samples[role]):
            d2 = diversity.distinct_n(outs, 2)
            session.records.append(example_record(
                suite=NAME, example_id=p.id, role=role, prompt=conv, output="\n---\n".join(outs),
                passed=len(set(outs)) > 1, scores={"distinct_2": round(d2, 4), "unique_samples": len(set(outs))},
                slice={}, reason="" if len(set(outs)) > 1 else "every sample is the same text",
            ))
    session.suite_metrics[NAME] = {role: diversity.summary(s) for role, s in samples.items()}
    return DiversityOutcome(prompts, samples)


def ratio_ci(candidate: list[float], baseline: list[float], *, n_resamples: int = 2000, seed: int = 0
             ) -> tuple[float, tuple[float, float]]:
    """mean(candidate) / mean(baseline) and its percentile bootstrap CI, resampling prompts in pairs."""
    import numpy as np

    c, b = np.asarray(candidate, float), np.asarray(baseline, float)
    idx = np.random.default_rng(seed).integers(0, c.size, size=(n_resamples, c.size))
    ratios = c[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(c.mean() / max(b.mean(), 1e-12)), (float(lo), float(hi))


def gate(name: str, outcome: DiversityOutcome, session) -> GateResult:
    if name not in GATES:
        raise KeyError(f"unknown diversity gate {name!r}")
    bar = session.config.suites.diversity.gates.min_ratio
    role = name.removeprefix("ratio_")
    cand, base = outcome.per_prompt("candidate"), outcome.per_prompt(role)

    def mean(v):
        return None if v is None else sum(v) / len(v)

    context = {"base_value": mean(outcome.per_prompt("base")), "champion_value": mean(outcome.per_prompt("champion"))}
    full = f"{NAME}.{name}"
    if base is None:
        return regression_gate(full, NAME, mean(cand), None, role, 1 - bar, False, "", **context)
    ratio, ci = ratio_ci(cand, base)
    # The value is the candidate's distinct-2, in the same unit as base's and champion's; the rule
    # "ratio below the bar" is the same as "worse by more than (1 - bar) x baseline". It is
    # significant when the bootstrap CI of the ratio lies entirely below 1. The CI is recorded in
    # the value's unit (ratio x the baseline's distinct-2), so it reads against base and champion.
    return regression_gate(
        full, NAME, mean(cand), mean(base), role, round((1 - bar) * mean(base), 4), ci[1] < 1.0,
        f"ratio {ratio:.3f} (bar {bar}), bootstrap 95% CI of the ratio {ci[0]:.3f}-{ci[1]:.3f}",
        what="distinct-2 within prompt", ci=(ci[0] * mean(base), ci[1] * mean(base)), **context,
    )
