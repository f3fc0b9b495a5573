"""Golden set: one test per example on the candidate, then the gates that decide promotion.

An example fails hard when a critical check fails (every check of a `critical: true` example, or
a check marked `"critical": true`); any other failure is xfail and counts toward the gates.
"""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("golden")


def test_example(example, outcome):
    """Pass; or fail if a critical check failed; or xfail with the failed checks."""
    rec = outcome.records["candidate"][example.id]
    if rec["passed"]:
        return
    message = f"{rec['reason']} | output: {rec['output'][:200]!r}"
    if rec["critical_failed"]:
        pytest.fail(f"critical example failed: {message}", pytrace=False)
    pytest.xfail(message)


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "golden", gate, outcome)
