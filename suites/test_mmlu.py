"""MMLU slice by log-likelihood: per-subject accuracy against base (xfail when it dropped beyond the
margin: the clustered gate decides), then the forgetting gates."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("mmlu")


def test_subject(subject, outcome, tunegate_run):
    cand, base = outcome.accuracy("candidate", subject.id), outcome.accuracy("base", subject.id)
    margin = tunegate_run.config.suites.mmlu.gates.margin
    if base - cand > margin:
        pytest.xfail(f"{subject.id}: accuracy {cand:.3f} vs base {base:.3f} on {len(subject.questions)} questions")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "mmlu", gate, outcome)
