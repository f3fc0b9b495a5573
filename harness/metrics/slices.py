"""Slice analysis: pass rate per slice value, the largest gap between slices (with a bootstrap
CI) and the worst slice against the overall rate. Pure functions over scored records."""
from __future__ import annotations

from collections import Counter

from harness.gating.stats import bootstrap_ci
from harness.metrics.aggregate import group_by_slice, pass_rate


def gap_keys(slices: list[dict], min_size: int) -> tuple[list[str], dict[str, str]]:
    """The slice keys whose pass-rate gap means something, from each item's `slice`: carried by every item,
    with at least two values and at least `min_size` items a value (a key with a value per item, such as a
    customer's name, is a label, and its gap is 1.0 as soon as one item fails). And the other keys, each
    with why it is left out."""
    keys, skipped = [], {}
    for key in dict.fromkeys(k for s in slices for k in s):
        sizes = Counter(str(s[key]) for s in slices if key in s)
        smallest = min(sizes, key=lambda v: sizes[v])
        if (missing := len(slices) - sum(sizes.values())) > 0:
            skipped[key] = f"{missing} of {len(slices)} items lack it"
        elif len(sizes) < 2:
            skipped[key] = f"one value only ({smallest!r})"
        elif sizes[smallest] < min_size:
            skipped[key] = f"value {smallest!r} has {sizes[smallest]} items, fewer than {min_size}"
        else:
            keys.append(key)
    return keys, skipped


def slice_gap(records: list[dict], key: str, *, n_resamples: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> dict:
    """Per-slice pass rates for the slice field `key`, the max-min gap and its percentile bootstrap
    CI (resampling records within each slice, so every slice keeps its size)."""
    import numpy as np

    grouped = group_by_slice(records, key)
    rates = {v: pass_rate(group) for v, group in grouped.items()}
    groups = {v: np.array([r["passed"] for r in group], dtype=float) for v, group in grouped.items()}

    def gap(draws: list) -> float:
        means = [g[idx].mean() for g, idx in zip(groups.values(), draws)]
        return max(means) - min(means)

    lo, hi = bootstrap_ci(gap, [g.size for g in groups.values()], n_resamples=n_resamples, confidence=confidence,
                          seed=seed)
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

    def change(draws: list) -> float:
        picked = [p[idx] for p, idx in zip(pairs.values(), draws)]
        return gap([d[:, 0].mean() for d in picked]) - gap([d[:, 1].mean() for d in picked])

    sizes = [len(p) for p in pairs.values()]
    observed = change([np.arange(n) for n in sizes])
    return float(observed), bootstrap_ci(change, sizes, n_resamples=n_resamples, seed=seed)
