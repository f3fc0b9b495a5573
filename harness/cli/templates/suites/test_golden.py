"""Golden set: one test per example on the candidate, then the gates that decide promotion.

An example fails hard when a critical check fails (every check of a `critical: true` example, or
a check marked `"critical": true`); any other failure is xfail and counts toward the gates."""
import pytest

from harness.plugin import check_gate, check_item

pytestmark = pytest.mark.tunegate_suite("golden")


def test_example(example, evaluation, request):
    check_item(request, "example", example)


def test_gate(gate, evaluation, request):
    check_gate(request, gate)
