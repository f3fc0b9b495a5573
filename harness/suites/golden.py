"""Golden set: each example answered by every role and scored by its rubric; gates on the pass rate.

What a failing example means is decided in suites/test_golden.py: one whose critical checks fail
fails hard and blocks through the `golden.critical` gate; any other failure is xfail and counts
toward the aggregate gates. `score_examples` is shared with the behaviour suite.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness import metrics
from harness.data import Example, load_jsonl
from harness.gates import GateResult, absolute_gate, all_pass_gate, noninferiority_gate
from harness.results import example_record

NAME = "golden"
ITEMS = ("example",)
GATES = ("pass_rate", "noninferior_base", "noninferior_champion", "critical")


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
        return {"base_value": self.rate("base"), "champion_value": self.rate("champion")}


def enabled(config) -> bool:
    return config.suites.golden.enabled


def data_paths(config) -> dict:
    return {"golden": config.suites.golden.path}


def items(session) -> dict[str, list]:
    return {"example": load_jsonl(session.config.path(session.config.suites.golden.path), kind="golden")}


def leakage_examples(session) -> list[Example]:
    return session.suite_items(NAME)["example"]


def score_examples(session, suite: str, examples: list[Example], max_new_tokens: int) -> RubricOutcome:
    """Answer every example as every role (batched, cached) and score the answers with the rubrics."""
    from harness.rubrics import score

    prompts = [ex.prompt(session.config.data.system_prompt) for ex in examples]
    records: dict[str, dict[str, dict]] = {}
    for role, outputs in session.generate_all(prompts, max_new_tokens).items():
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
        session.records.extend(by_id.values())
    return RubricOutcome(examples, records)


def evaluate(session) -> RubricOutcome:
    outcome = score_examples(session, NAME, session.suite_items(NAME)["example"],
                             session.config.suites.golden.max_new_tokens)
    session.suite_metrics[NAME] = {role: suite_metrics(list(recs.values())) for role, recs in outcome.records.items()}
    return outcome


def suite_metrics(records: list[dict]) -> dict:
    """Pass rate (with CI), JSON-schema validity, and pass rate by task slice."""
    out = metrics.summary(records)
    out["json_valid_rate"] = metrics.check_rate("json_schema")(records)
    if all("task" in r["slice"] for r in records):
        out["by_task"] = metrics.by_slice(metrics.pass_rate, "task")(records)
    return out


def critical_gate(name: str, suite: str, outcome: RubricOutcome) -> GateResult:
    critical = [ex for ex in outcome.examples if ex.must_pass()]
    failed = [ex.id for ex in critical if outcome.records["candidate"][ex.id]["critical_failed"]]
    return all_pass_gate(name, suite, failed, len(critical))


def gate(name: str, outcome: RubricOutcome, session) -> GateResult:
    """Compute one of GATES."""
    g = session.config.suites.golden.gates
    candidate = outcome.outcomes("candidate")
    full = f"{NAME}.{name}"
    if name == "pass_rate":
        return absolute_gate(full, NAME, candidate, g.min_pass_rate, **outcome.context())
    if name in ("noninferior_base", "noninferior_champion"):
        role = name.removeprefix("noninferior_")
        return noninferiority_gate(full, NAME, candidate, outcome.outcomes(role), role, g.margin, g.alpha,
                                   **outcome.context())
    if name == "critical":
        return critical_gate(full, NAME, outcome)
    raise KeyError(f"unknown golden gate {name!r}")
