"""The golden suite's logic: generate each role's answers, score them with the rubrics, gate.

What a failing example means is decided in suites/test_golden.py: one whose critical checks fail
fails hard and blocks through the `golden.critical` gate; any other failure is xfail and counts
toward the aggregate gates.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness import metrics
from harness.data import Example
from harness.gates import GateResult, absolute_gate, all_pass_gate, noninferiority_gate
from harness.results import example_record

SUITE = "golden"


@dataclass(frozen=True)
class GoldenOutcome:
    examples: list[Example]
    records: dict[str, dict[str, dict]]  # role -> example id -> record

    def outcomes(self, role: str) -> list[bool] | None:
        """Pass/fail per example in file order, or None if the role did not run."""
        if role not in self.records:
            return None
        return [self.records[role][ex.id]["passed"] for ex in self.examples]


def evaluate(session) -> GoldenOutcome:
    """Answer every golden example as every role (batched, cached) and score the answers."""
    from harness.rubrics import score

    cfg = session.config.suites.golden
    examples = session.suite_examples(SUITE)
    prompts = [ex.prompt(session.config.data.system_prompt) for ex in examples]
    engine = session.engine()
    records: dict[str, dict[str, dict]] = {}
    for role, engine_role in session.roles().items():
        outputs = engine.generate(engine_role, prompts, cfg.max_new_tokens)
        by_id = {}
        for ex, prompt, out in zip(examples, prompts, outputs):
            must_pass = ex.must_pass()
            s = score(ex.rubric, out, ex.reference, must_pass)
            by_id[ex.id] = example_record(
                suite=SUITE, example_id=ex.id, role=role, prompt=prompt, output=out, passed=s.passed,
                scores=s.as_dict(), slice=ex.slice, critical=bool(must_pass), critical_failed=s.critical_failed,
                reason=s.reason(),
            )
        records[role] = by_id
        session.records.extend(by_id.values())
    session.suite_metrics[SUITE] = {role: suite_metrics(list(recs.values())) for role, recs in records.items()}
    return GoldenOutcome(examples, records)


def suite_metrics(records: list[dict]) -> dict:
    """Pass rate (with CI), JSON-schema validity, and pass rate by task slice."""
    out = metrics.summary(records)
    out["json_valid_rate"] = metrics.check_rate("json_schema")(records)
    if all("task" in r["slice"] for r in records):
        out["by_task"] = metrics.by_slice(metrics.pass_rate, "task")(records)
    return out


def gate(name: str, outcome: GoldenOutcome, session) -> GateResult:
    """Compute one of the golden suite's gates (names in harness.suites.SUITES['golden'].gates)."""
    g = session.config.suites.golden.gates
    candidate = outcome.outcomes("candidate")
    full = f"{SUITE}.{name}"
    if name == "pass_rate":
        return absolute_gate(full, SUITE, candidate, g.min_pass_rate)
    if name in ("noninferior_base", "noninferior_champion"):
        role = name.removeprefix("noninferior_")
        return noninferiority_gate(full, SUITE, candidate, outcome.outcomes(role), role, g.margin, g.alpha)
    if name == "critical":
        critical = [ex for ex in outcome.examples if ex.must_pass()]
        failed = [ex.id for ex in critical if outcome.records["candidate"][ex.id]["critical_failed"]]
        return all_pass_gate(full, SUITE, failed, len(critical))
    raise KeyError(f"unknown golden gate {name!r}")
