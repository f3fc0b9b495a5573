"""LLM-as-judge: one test per item on the candidate (xfail when the judge fails it or it loses a
comparison in both orders; never a hard failure), then the gates, which only gate once the judge is
calibrated against human grades (otherwise they are skipped with the reason)."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("judge")


def test_example(example, evaluation, request):
    check_item(request, "example", example)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
