"""Must-have behaviours: every one is a hard test, and the gate blocks on any failure."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("behaviour")


def test_behaviour(behaviour, outcome):
    rec = outcome.records["candidate"][behaviour.id]
    assert rec["passed"], f"{rec['reason']} | output: {rec['output'][:200]!r}"


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "behaviour", gate, outcome)
