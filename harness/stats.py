"""Paired statistics for gates: pure functions over per-item outcomes on the same items."""
from __future__ import annotations

import math
from dataclasses import dataclass


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
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
    p_two = min(1.0, 2 * min(binom_cdf_upper(b, n), binom_cdf_upper(c, n)))
    return McNemar(b, c, p_worse, p_two)
