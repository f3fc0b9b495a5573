"""Diversity: a prompt whose sampled answers are all the same text is xfail (collapsed); the gates
compare the candidate's diversity with base's and the champion's."""
import pytest

from harness.plugin import check_gate

pytestmark = pytest.mark.tunegate_suite("diversity")


def test_prompt(prompt, outcome):
    i = outcome.prompts.index(prompt)
    samples = outcome.samples["candidate"][i]
    if len(set(samples)) == 1:
        pytest.xfail(f"all {len(samples)} samples are the same: {samples[0][:120]!r}")


def test_gate(gate, outcome, tunegate_run):
    check_gate(tunegate_run, "diversity", gate, outcome)
