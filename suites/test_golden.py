"""Golden set: one test per example on the candidate, then the gates that decide promotion.

A failing non-critical example is xfail (it counts toward the gates); a failing critical one fails.
"""
import pytest

from harness import golden
from harness.suites import SUITES

pytestmark = pytest.mark.tunegate_suite("golden")


@pytest.fixture(scope="module")
def outcome(tunegate_run, engine):
    return golden.evaluate(tunegate_run)


def test_example(example, outcome):
    golden.check_example(example, outcome)


@pytest.mark.parametrize("gate", SUITES["golden"].gates)
def test_gate(gate, outcome, tunegate_run):
    result = tunegate_run.record_gate(golden.gate(gate, outcome, tunegate_run))
    if result.passed is None:
        pytest.skip(result.detail)
    assert result.passed, result.describe()
