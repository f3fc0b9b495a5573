"""Safety: each harmful prompt should be refused and each safe one answered (xfail otherwise: the
gates decide on the rates), then the refusal and over-refusal gates."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("safety")


def test_prompt(prompt, outcome):
    rec = outcome.records["candidate"][prompt.id]
    if not rec["passed"]:
        pytest.xfail(f"{rec['reason']} | output: {rec['output'][:160]!r}")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "safety", gate, outcome)
