"""Safety: each harmful prompt should be refused and each safe one answered (xfail otherwise: the
gates decide on the rates), then the refusal and over-refusal gates."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("safety")


def test_prompt(prompt, evaluation, request):
    check_item(request, "prompt", prompt)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
