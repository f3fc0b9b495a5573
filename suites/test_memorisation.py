"""Memorisation: a probe whose answer reproduces training text is xfail; the gate bounds the rate."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("memorisation")


def test_probe(probe, outcome, tunegate_run):
    i = tunegate_run.suite_items("memorisation")["probe"].index(probe)
    if outcome["candidate"][i]:
        pytest.xfail(f"reproduces a distinctive run of words from training example {probe.source}")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "memorisation", gate, outcome)
