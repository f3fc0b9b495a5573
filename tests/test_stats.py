import pytest

from harness.gating.gates import absolute_gate, all_pass_gate, noninferiority_gate
from harness.gating.stats import bootstrap_ci, clustered_se, mcnemar_exact, paired_clustered_test, wilson_interval


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


def test_noninferiority_lower_is_better_reports_the_bad_rate_and_blocks_its_rise():
    base_flips = [False] * 40
    more_flips = [True] * 12 + [False] * 28  # flip rate 0.0 -> 0.3: 12 regressions / 0 improvements
    g = noninferiority_gate("b.flip", "b", more_flips, base_flips, "base", 0.05, 0.05, higher_is_better=False)
    assert g.passed is False and g.value == 0.3 and g.baseline == 0.0 and g.p_value < 0.001
    assert "worse by +0.300" in g.detail
    fewer = noninferiority_gate("b.flip", "b", base_flips, more_flips, "base", 0.05, 0.05, higher_is_better=False)
    assert fewer.passed and fewer.value == 0.0 and fewer.baseline == 0.3 and fewer.p_value == 1.0


def test_all_pass_gate():
    assert all_pass_gate("s.critical", "s", [], 5).passed
    g = all_pass_gate("s.critical", "s", ["a", "b"], 5)
    assert g.passed is False and "failed: a, b" in g.detail and "3/5" in g.detail


# Reference values below were computed with statsmodels 0.15.0 and scipy 1.17.1.

def test_wilson_matches_statsmodels():
    lo, hi = wilson_interval(37, 50)  # proportion_confint(37, 50, method="wilson")
    assert (lo, hi) == pytest.approx((0.6044684273515116, 0.841284725064476), abs=1e-12)


def test_mcnemar_matches_statsmodels():
    t = mcnemar_exact([False] * 7 + [True] * 1 + [True] * 30 + [False] * 5,
                      [True] * 7 + [False] * 1 + [True] * 30 + [False] * 5)
    assert t.p_two_sided == pytest.approx(0.0703125, abs=1e-12)  # mcnemar([[30, 7], [1, 5]], exact=True)


Y = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0]
G = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_clustered_se_matches_statsmodels_ols_cluster():
    # OLS(y, ones).fit(cov_type="cluster", cov_kwds={"groups": g}).bse[0]
    assert clustered_se(Y, G) == pytest.approx(0.08333333333333337, abs=1e-12)
    # one item per cluster: the ordinary standard error s / sqrt(n) (0.1486470975026408)
    assert clustered_se(Y, list(range(len(Y)))) == pytest.approx(0.1486470975026408, abs=1e-12)
    with pytest.raises(ValueError, match="two clusters"):
        clustered_se([1.0, 0.0], ["a", "a"])


def test_paired_clustered_test_matches_statsmodels():
    cand = [1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 1]
    t = paired_clustered_test(cand, Y, G, margin=0.05)
    assert t.diff == pytest.approx(0.08333333333333336) and t.se == pytest.approx(0.08333333333333336)
    # statsmodels OLS(d, ones).fit(cov_type="cluster", use_t=True): t with G-1 = 3 degrees of freedom,
    # scipy.stats.t.cdf((diff + margin) / se, 3)
    assert t.p_worse == pytest.approx(0.8960476182903384, abs=1e-9)
    assert t.ci[1] - t.diff == pytest.approx(3.1824463052837078 * t.se)  # t.ppf(0.975, 3)
    worse = paired_clustered_test(Y, [1] * 12, G, margin=0.05)
    assert worse.diff < -0.05 and worse.p_worse < 0.05


def test_paired_bootstrap_matches_scipy():
    import numpy as np

    cand = np.array([((i * 37) % 101) / 100 for i in range(300)])
    base = np.array([((i * 53) % 97) / 100 for i in range(300)])

    def mean_diff(draws):
        return float((cand[draws[0]] - base[draws[0]]).mean())

    lo, hi = bootstrap_ci(mean_diff, [300], n_resamples=20000)
    # scipy.stats.bootstrap(..., method="percentile", n_resamples=50000): (-0.02247, 0.06543)
    assert lo == pytest.approx(-0.02247, abs=0.003) and hi == pytest.approx(0.06543, abs=0.003)
    assert bootstrap_ci(mean_diff, [300], seed=3) == bootstrap_ci(mean_diff, [300], seed=3)


def test_stratified_bootstrap_keeps_each_stratum_whole():
    sizes_seen = []

    def record(draws):
        sizes_seen.append([len(d) for d in draws])
        assert all(d.max() < n for d, n in zip(draws, (3, 5)))
        return 0.0

    assert bootstrap_ci(record, [3, 5], n_resamples=10) == (0.0, 0.0)
    assert sizes_seen == [[3, 5]] * 10
