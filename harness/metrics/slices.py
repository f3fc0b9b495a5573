"""Slice analysis: pass rate per slice value, the largest gap between slices (with a bootstrap
CI) and the worst slice against the overall rate. Pure functions over scored records."""
from __future__ import annotations

from harness.metrics.aggregate import group_by_slice, pass_rate


def slice_gap(records: list[dict], key: str, *, n_resamples: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> dict:
    """Per-slice pass rates for the slice field `key`, the max-min gap and its percentile bootstrap
    CI (resampling records within each slice, so every slice keeps its size)."""
    import numpy as np

    grouped = group_by_slice(records, key)
    rates = {v: pass_rate(group) for v, group in grouped.items()}
    groups = {v: np.array([r["passed"] for r in group], dtype=float) for v, group in grouped.items()}
    rng = np.random.default_rng(seed)
    gaps = np.empty(n_resamples)
    for b in range(n_resamples):
        means = [g[rng.integers(0, g.size, g.size)].mean() for g in groups.values()]
        gaps[b] = max(means) - min(means)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(gaps, [tail, 100 - tail])
    worst = min(rates, key=lambda v: rates[v])
    overall = pass_rate(records)
    return {
        "key": key,
        "rates": rates,
        "sizes": {v: int(g.size) for v, g in groups.items()},
        "max_gap": max(rates.values()) - min(rates.values()),
        "gap_ci": [float(lo), float(hi)],
        "worst_slice": worst,
        "worst_vs_overall": rates[worst] - overall,
    }


def paired_gap_change(candidate: list[dict], baseline: list[dict], key: str, *, n_resamples: int = 2000,
                      seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Candidate's max-min slice gap minus the baseline's, on the same records (matched by
    example_id), with a percentile bootstrap CI that resamples the same items for both."""
    import numpy as np

    base_by_id = {r["example_id"]: r for r in baseline}
    groups = group_by_slice(candidate, key)
    pairs = {v: np.array([[r["passed"], base_by_id[r["example_id"]]["passed"]] for r in g], dtype=float)
             for v, g in groups.items()}

    def gap(means: list[float]) -> float:
        return max(means) - min(means)

    observed = gap([p[:, 0].mean() for p in pairs.values()]) - gap([p[:, 1].mean() for p in pairs.values()])
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for b in range(n_resamples):
        draws = [p[rng.integers(0, len(p), len(p))] for p in pairs.values()]
        diffs[b] = gap([d[:, 0].mean() for d in draws]) - gap([d[:, 1].mean() for d in draws])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(observed), (float(lo), float(hi))
