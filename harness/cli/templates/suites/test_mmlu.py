"""MMLU slice by log-likelihood: per-subject accuracy against base (xfail when it dropped beyond the
margin: the clustered gate decides), then the forgetting gates."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("mmlu")


def test_subject(subject, evaluation, request):
    check_item(request, "subject", subject)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
