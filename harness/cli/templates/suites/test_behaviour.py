"""Must-have behaviours: every one is a hard test, and the gate blocks on any failure."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("behaviour")


def test_behaviour(behaviour, evaluation, request):
    check_item(request, "behaviour", behaviour)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
