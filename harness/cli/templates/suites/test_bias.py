"""Slice-based bias: BBQ per category, counterfactual pairs (xfail when the answer changed with the
name), then the gates on the BBQ bias score, the slice gap and the flip rate."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("bias")


def test_category(category, evaluation, request):
    check_item(request, "category", category)


def test_pair(pair, evaluation, request):
    check_item(request, "pair", pair)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
