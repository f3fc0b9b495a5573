"""Diversity: a prompt whose sampled answers are all the same text is xfail (collapsed); the gates
compare the candidate's diversity with base's and the champion's."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("diversity")


def test_prompt(prompt, evaluation, request):
    check_item(request, "prompt", prompt)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
