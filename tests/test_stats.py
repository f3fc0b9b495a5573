import pytest

from harness.gates import absolute_gate, all_pass_gate, noninferiority_gate
from harness.stats import mcnemar_exact, wilson_interval


def test_wilson_known_values():
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)


def test_mcnemar_exact_known_values():
    # 10 regressions, 2 improvements: two-sided exact p = 2 * P(X>=10 | n=12) = 0.03857
    cand = [False] * 10 + [True] * 2 + [True] * 30
    base = [True] * 10 + [False] * 2 + [True] * 30
    t = mcnemar_exact(cand, base)
    assert (t.regressions, t.improvements) == (10, 2)
    assert t.p_two_sided == pytest.approx(0.038574, abs=1e-6)
    assert t.p_worse == pytest.approx(0.019287, abs=1e-6)
    same = mcnemar_exact([True, False], [True, False])
    assert same.p_worse == 1.0 and same.regressions == 0
    with pytest.raises(ValueError):
        mcnemar_exact([True], [True, False])


def test_absolute_gate():
    g = absolute_gate("s.pass_rate", "s", [True] * 7 + [False] * 3, 0.7)
    assert g.passed and g.value == 0.7 and g.ci[0] < 0.7 < g.ci[1]
    assert not absolute_gate("s.pass_rate", "s", [True] * 6 + [False] * 4, 0.7).passed


def test_noninferiority_blocks_only_a_significant_drop_beyond_margin():
    base = [True] * 40
    big_drop = [False] * 12 + [True] * 28  # drop 0.30, 12 regressions / 0 improvements
    g = noninferiority_gate("s.ni", "s", big_drop, base, "base", margin=0.05, alpha=0.05)
    assert g.passed is False and g.p_value < 0.001 and g.baseline == 1.0
    small = [False] * 1 + [True] * 39  # drop 0.025 < margin
    assert noninferiority_gate("s.ni", "s", small, base, "base", 0.05, 0.05).passed
    noisy = [False] * 3 + [True] * 37 + [True]  # drop beyond margin but 3/0 discordant: p=0.125
    g = noninferiority_gate("s.ni", "s", noisy[:40], base, "base", 0.05, 0.05)
    assert g.passed and "not significant" in g.detail
    assert noninferiority_gate("s.ni", "s", base, None, "champion", 0.05, 0.05).passed is None


def test_all_pass_gate():
    assert all_pass_gate("s.critical", "s", [], 5).passed
    g = all_pass_gate("s.critical", "s", ["a", "b"], 5)
    assert g.passed is False and "failed: a, b" in g.detail and "3/5" in g.detail
