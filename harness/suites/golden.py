"""Golden set: each example answered by every role and scored by its rubric; gates on the pass rate.

An example whose critical checks fail fails hard and blocks through the `golden.critical` gate; any
other failure is xfail and counts toward the aggregate gates. `score_examples` is shared with the
behaviour and judge suites.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field

from harness import metrics
from harness.data.examples import Example, load_jsonl
from harness.data.rubrics import score
from harness.gating.gates import GateResult, absolute_gate, all_pass_gate, noninferiority_gate
from harness.roles import BASE, CANDIDATE, CHAMPION
from harness.settings import Section
from harness.store.results import example_record
from harness.suites.api import PASSED, Evaluation, ItemCheck, RunView, Suite, SuiteSettings, unknown_gate


class GoldenGates(Section):
    min_pass_rate: float = Field(0.7, ge=0, le=1, description="Absolute bar on the candidate's golden pass rate.")
    margin: float = Field(
        0.05, ge=0, le=1, description="Non-inferiority margin: the largest tolerated drop in pass rate vs base/champion."
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="Significance level of the one-sided McNemar exact test for a regression."
    )


class GoldenSettings(SuiteSettings):
    path: Path = Field(Path("fixtures/demo/golden.jsonl"), description="Golden examples with rubrics (JSONL).")
    max_new_tokens: int = Field(
        72, ge=1, le=4096, description="Generation budget per answer (the demo's longest reference is 56 tokens)."
    )
    gates: GoldenGates = Field(default_factory=GoldenGates, description="Golden-suite gate thresholds.")


@dataclass(frozen=True)
class RubricOutcome:
    examples: list[Example]
    records: dict[str, dict[str, dict]]  # role -> example id -> record

    def outcomes(self, role: str) -> list[bool] | None:
        """Pass/fail per example in file order, or None if the role did not run."""
        if role not in self.records:
            return None
        return [self.records[role][ex.id]["passed"] for ex in self.examples]

    def rate(self, role: str) -> float | None:
        got = self.outcomes(role)
        return sum(got) / len(got) if got else None

    def context(self) -> dict:
        """The base's and champion's pass rates, shown next to every gate."""
        return {"base_value": self.rate(BASE), "champion_value": self.rate(CHAMPION)}

    def candidate_record(self, example_id: str) -> dict:
        return self.records[CANDIDATE][example_id]


def score_examples(run: RunView, suite: str, examples: list[Example], max_new_tokens: int
                   ) -> Evaluation[RubricOutcome]:
    """Answer every example as every role (batched, cached) and score the answers with the rubrics."""
    prompts = [ex.prompt(run.config.data.system_prompt) for ex in examples]
    records: dict[str, dict[str, dict]] = {}
    for role, outputs in run.generate(prompts, max_new_tokens).items():
        by_id = {}
        for ex, prompt, out in zip(examples, prompts, outputs):
            must_pass = ex.must_pass()
            s = score(ex.rubric, out, ex.reference, must_pass)
            by_id[ex.id] = example_record(
                suite=suite, example_id=ex.id, role=role, prompt=prompt, output=out, passed=s.passed,
                scores=s.as_dict(), slice=ex.slice, critical=bool(must_pass), critical_failed=s.critical_failed,
                reason=s.reason(),
            )
        records[role] = by_id
    return Evaluation(RubricOutcome(examples, records), [r for by_id in records.values() for r in by_id.values()])


def suite_metrics(records: list[dict]) -> dict:
    """Pass rate (with CI), JSON-schema validity, and pass rate by task slice."""
    out = metrics.summary(records)
    out["json_valid_rate"] = metrics.check_rate("json_schema")(records)
    if all("task" in r["slice"] for r in records):
        out["by_task"] = metrics.by_slice(metrics.pass_rate, "task")(records)
    return out


def critical_gate(name: str, suite: str, outcome: RubricOutcome) -> GateResult:
    critical = [ex for ex in outcome.examples if ex.must_pass()]
    failed = [ex.id for ex in critical if outcome.records[CANDIDATE][ex.id]["critical_failed"]]
    return all_pass_gate(name, suite, failed, len(critical))


def rubric_check(rec: dict) -> ItemCheck:
    """Pass; or fail if a critical check failed; or xfail with the failed checks."""
    if rec["passed"]:
        return PASSED
    message = f"{rec['reason']} | output: {rec['output'][:200]!r}"
    if rec["critical_failed"]:
        return ItemCheck("fail", f"critical example failed: {message}")
    return ItemCheck("xfail", message)


class Golden(Suite[GoldenSettings, RubricOutcome]):
    """Golden set: each example answered by every role and scored by its rubric; gates on the pass rate."""

    name = "golden"
    failure_mode = "task quality and format"
    settings = GoldenSettings
    params = ("example",)
    gates = ("pass_rate", "noninferior_base", "noninferior_champion", "critical")

    def data_paths(self, settings: GoldenSettings) -> dict[str, Path]:
        return {"golden": settings.path}

    def load_items(self, settings: GoldenSettings, run: RunView) -> dict[str, list]:
        return {"example": load_jsonl(run.path(settings.path), kind="golden")}

    def evaluate(self, settings, items, run) -> Evaluation[RubricOutcome]:
        ev = score_examples(run, self.name, items["example"], settings.max_new_tokens)
        metrics_ = {role: suite_metrics(list(recs.values())) for role, recs in ev.outcome.records.items()}
        return Evaluation(ev.outcome, ev.records, metrics_)

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        return rubric_check(evaluation.outcome.candidate_record(item.id))

    def gate(self, name, settings, evaluation) -> GateResult:
        g, outcome = settings.gates, evaluation.outcome
        candidate = outcome.outcomes(CANDIDATE)
        full = self.gate_name(name)
        if name == "pass_rate":
            return absolute_gate(full, self.name, candidate, g.min_pass_rate, **outcome.context())
        if name in ("noninferior_base", "noninferior_champion"):
            role = name.removeprefix("noninferior_")
            return noninferiority_gate(full, self.name, candidate, outcome.outcomes(role), role, g.margin, g.alpha,
                                       **outcome.context())
        if name == "critical":
            return critical_gate(full, self.name, outcome)
        raise unknown_gate(self, name)
