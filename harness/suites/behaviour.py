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
    path: Path | None = Field(None, description="The task's own must-have behaviours, with rubrics (the golden "
                              "format). Unset, the suite is off: behaviours are the task owner's to write.")
    max_new_tokens: int = Field(72, ge=1, le=4096, description="Generation budget per answer.")


class Behaviour(Suite[BehaviourSettings, RubricOutcome]):
    """Must-have behaviours: every one is a hard test, and the gate blocks on any failure."""

    name = "behaviour"
    failure_mode = "must-have behaviours"
    settings = BehaviourSettings
    params = ("behaviour",)
    gates = ("all_pass",)

    def off_reason(self, settings: BehaviourSettings) -> str | None:
        if settings.path is None:
            return ("no behaviours of the task's own: set suites.behaviour.path to a JSONL file of must-have "
                    "behaviours with rubrics (the golden format)")
        return None

    def data_paths(self, settings: BehaviourSettings) -> dict[str, Path]:
        return {} if settings.path is None else {"behaviour": settings.path}

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
