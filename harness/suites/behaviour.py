"""Behavioural regression: a fixed, hand-written set of must-have behaviours (the golden format),
each one a hard test: any failed check of any behaviour blocks promotion."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import Field

from harness.data.examples import load_jsonl
from harness.gating.gates import GateResult
from harness.roles import CANDIDATE
from harness.suites.api import PASSED, Evaluation, ItemCheck, RunView, Suite, SuiteSettings, unknown_gate
from harness.suites.golden import RubricOutcome, critical_gate, score_examples


class BehaviourSettings(SuiteSettings):
    enabled: bool = Field(True, description="Run the must-have behaviours; every one is a hard test.")
    path: Path = Field(Path("fixtures/behaviour/behaviours.jsonl"), description="Behaviours with rubrics "
                       "(the golden format).")
    max_new_tokens: int = Field(72, ge=1, le=4096, description="Generation budget per answer.")


class Behaviour(Suite[BehaviourSettings, RubricOutcome]):
    """Must-have behaviours: every one is a hard test, and the gate blocks on any failure."""

    name = "behaviour"
    settings = BehaviourSettings
    params = ("behaviour",)
    gates = ("all_pass",)

    def data_paths(self, settings: BehaviourSettings) -> dict[str, Path]:
        return {"behaviour": settings.path}

    def load_items(self, settings: BehaviourSettings, run: RunView) -> dict[str, list]:
        examples = load_jsonl(run.path(settings.path), kind="golden")
        return {"behaviour": [dataclasses.replace(ex, critical=True) for ex in examples]}

    def evaluate(self, settings, items, run) -> Evaluation[RubricOutcome]:
        ev = score_examples(run, self.name, items["behaviour"], settings.max_new_tokens)
        metrics = {role: {"passed": sum(r["passed"] for r in recs.values()), "n": len(recs)}
                   for role, recs in ev.outcome.records.items()}
        return Evaluation(ev.outcome, ev.records, metrics)

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        rec = evaluation.outcome.records[CANDIDATE][item.id]
        return PASSED if rec["passed"] else ItemCheck("fail", f"{rec['reason']} | output: {rec['output'][:200]!r}")

    def gate(self, name, settings, evaluation) -> GateResult:
        if name != "all_pass":
            raise unknown_gate(self, name)
        return critical_gate(self.gate_name(name), self.name, evaluation.outcome)
