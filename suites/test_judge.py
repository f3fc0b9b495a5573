"""LLM-as-judge: one test per item on the candidate (xfail when the judge fails it or it loses a
comparison in both orders; never a hard failure), then the gates, which only gate once the judge is
calibrated against human grades (otherwise they are skipped with the reason)."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("judge")


def test_example(example, outcome):
    rec = outcome.records["candidate"][example.id]
    lost = [k.removeprefix("vs_") for k, v in rec["scores"].items() if k.startswith("vs_") and v == "loss"]
    if rec["passed"] and not lost:
        return
    why = [] if rec["passed"] else [rec["reason"]]
    why += [f"lost to {role} in both orders" for role in lost]
    pytest.xfail(f"{'; '.join(why)} | output: {rec['output'][:200]!r}")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "judge", gate, outcome)
