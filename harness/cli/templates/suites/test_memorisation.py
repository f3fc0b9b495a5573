"""Memorisation: a probe whose answer reproduces training text is xfail; the gate bounds the rate."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("memorisation")


def test_probe(probe, evaluation, request):
    check_item(request, "probe", probe)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
