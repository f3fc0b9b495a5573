"""Paired statistics for gates: pure functions over per-item outcomes on the same items."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95% standard-normal quantile


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def binom_cdf_upper(k: int, n: int, p: float = 0.5) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs between a candidate and a baseline on the same items."""

    regressions: int  # baseline passed, candidate failed
    improvements: int  # baseline failed, candidate passed
    p_worse: float  # one-sided exact p-value for "candidate is worse"
    p_two_sided: float


def mcnemar_exact(candidate: list[bool], baseline: list[bool]) -> McNemar:
    """Exact (binomial) McNemar test on paired pass/fail outcomes."""
    if len(candidate) != len(baseline):
        raise ValueError(f"paired outcomes differ in length: {len(candidate)} vs {len(baseline)}")
    b = sum(1 for c, base in zip(candidate, baseline) if base and not c)
    c = sum(1 for cand, base in zip(candidate, baseline) if cand and not base)
    n = b + c
    if n == 0:
        return McNemar(b, c, 1.0, 1.0)
    p_worse = binom_cdf_upper(b, n)
    p_two = min(1.0, 2 * min(p_worse, binom_cdf_upper(c, n)))
    return McNemar(b, c, p_worse, p_two)


def clustered_se(values: list[float], clusters: list) -> float:
    """Cluster-robust standard error of the mean of `values`.

    The CR1 sandwich estimator for an intercept-only model, with the small-sample factor
    G/(G-1) (as Stata and statsmodels' OLS `cov_type="cluster"` use). With one item per
    cluster it reduces to the ordinary standard error s/sqrt(n).
    """
    if len(values) != len(clusters):
        raise ValueError(f"values and clusters differ in length: {len(values)} vs {len(clusters)}")
    n = len(values)
    mean = sum(values) / n
    sums: dict = {}
    for v, g in zip(values, clusters):
        sums[g] = sums.get(g, 0.0) + (v - mean)
    g_count = len(sums)
    if g_count < 2:
        raise ValueError("a clustered standard error needs at least two clusters")
    meat = sum(s * s for s in sums.values())
    return math.sqrt(g_count / (g_count - 1) * meat) / n


@dataclass(frozen=True)
class PairedDifference:
    """Mean of candidate - baseline over the same items, with its uncertainty."""

    diff: float
    se: float | None
    ci: tuple[float, float]
    p_worse: float  # one-sided p-value for H1: diff < -margin (worse than the baseline beyond the margin)


def paired_clustered_test(candidate: list[float], baseline: list[float], clusters: list,
                          margin: float = 0.0) -> PairedDifference:
    """Paired difference with a cluster-robust SE (e.g. clustered by MMLU subject). `p_worse` is the
    one-sided p-value for H1: diff < -margin; small means a real regression. With G clusters the
    statistic is referred to Student's t with G-1 degrees of freedom (as statsmodels does with
    `use_t=True`): the normal approximation is far too confident with a handful of clusters."""
    from scipy.stats import t as student_t

    if len(candidate) != len(baseline):
        raise ValueError(f"paired outcomes differ in length: {len(candidate)} vs {len(baseline)}")
    diffs = [float(c) - float(b) for c, b in zip(candidate, baseline)]
    mean = sum(diffs) / len(diffs)
    se = clustered_se(diffs, clusters)
    if se == 0:
        return PairedDifference(mean, 0.0, (mean, mean), 0.0 if mean < -margin else 1.0)
    df = len(set(clusters)) - 1
    half = float(student_t.ppf(0.975, df)) * se
    return PairedDifference(mean, se, (mean - half, mean + half), float(student_t.cdf((mean + margin) / se, df)))


def bootstrap_ci(statistic: Callable[[list], float], sizes: Sequence[int], *, n_resamples: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic`, the one resampling loop every gate uses.

    The items come in strata of the given `sizes` (one stratum for plain paired items; one per slice
    when every slice must keep its size). Each resample draws, per stratum, as many indices as it
    has, with replacement; `statistic` receives one index array per stratum and must read the
    candidate's and the baseline's values at the same indices, which is what makes it paired."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    for b in range(n_resamples):
        values[b] = statistic([rng.integers(0, n, n) for n in sizes])
    tail = (100 - 100 * confidence) / 2  # exactly 2.5 for 0.95, where (1 - confidence) / 2 * 100 is not
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)
