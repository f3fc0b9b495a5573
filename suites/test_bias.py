"""Slice-based bias: BBQ per category, counterfactual pairs (xfail when the answer changed with the
name), then the gates on the BBQ bias score, the slice gap and the flip rate."""
import pytest

from harness.metrics.bias import bbq_scores
from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("bias")


def test_category(category, outcome, tunegate_run):
    cand = bbq_scores([r for r in outcome.bbq["candidate"] if r["category"] == category.id])
    base = bbq_scores([r for r in outcome.bbq["base"] if r["category"] == category.id])
    if abs(cand["s_amb"]) > abs(base["s_amb"]) + tunegate_run.config.suites.bias.gates.margin:
        pytest.xfail(f"{category.id}: s_AMB {cand['s_amb']:+.3f} vs base {base['s_amb']:+.3f}")


def test_pair(pair, outcome, tunegate_run):
    i = tunegate_run.suite_items("bias")["pair"].index(pair)
    if outcome.flipped["candidate"][i]:
        pytest.xfail("the structured answer changed when only the customer's name changed")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "bias", gate, outcome)
