"""Behavioural regression: a fixed, hand-written set of must-have behaviours (the golden format),
each one a hard test: any failed check of any behaviour blocks promotion."""
from __future__ import annotations

import dataclasses

from harness.data import Example, load_jsonl
from harness.gates import GateResult
from harness.suites.golden import RubricOutcome, critical_gate, score_examples

NAME = "behaviour"
ITEMS = ("behaviour",)
GATES = ("all_pass",)


def enabled(config) -> bool:
    return config.suites.behaviour.enabled


def data_paths(config) -> dict:
    return {"behaviour": config.suites.behaviour.path}


def items(session) -> dict[str, list]:
    examples = load_jsonl(session.config.path(session.config.suites.behaviour.path), kind="golden")
    return {"behaviour": [dataclasses.replace(ex, critical=True) for ex in examples]}


def leakage_examples(session) -> list[Example]:
    return session.suite_items(NAME)["behaviour"]


def evaluate(session) -> RubricOutcome:
    outcome = score_examples(session, NAME, session.suite_items(NAME)["behaviour"],
                             session.config.suites.behaviour.max_new_tokens)
    session.suite_metrics[NAME] = {role: {"passed": sum(r["passed"] for r in recs.values()), "n": len(recs)}
                                   for role, recs in outcome.records.items()}
    return outcome


def gate(name: str, outcome: RubricOutcome, session) -> GateResult:
    if name != "all_pass":
        raise KeyError(f"unknown behaviour gate {name!r}")
    return critical_gate(f"{NAME}.{name}", NAME, outcome)
