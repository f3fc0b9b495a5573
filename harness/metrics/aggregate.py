"""Aggregate metrics over scored records, and their composition by slice."""
from __future__ import annotations

from typing import Callable

from harness.gating.stats import wilson_interval

Metric = Callable[[list[dict]], float | None]


def pass_rate(records: list[dict]) -> float | None:
    """Share of records that passed (None for no records)."""
    return sum(r["passed"] for r in records) / len(records) if records else None


def check_rate(check: str) -> Metric:
    """Share of records passing one named rubric check, among records that have it."""

    def metric(records: list[dict]) -> float | None:
        having = [r["scores"][check] for r in records if check in r["scores"]]
        return sum(bool(v) for v in having) / len(having) if having else None

    metric.__name__ = f"{check}_rate"
    return metric


def group_by_slice(records: list[dict], key: str) -> dict[str, list[dict]]:
    """Records grouped by the value of slice field `key`, sorted by value; a record without the key
    is an error."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if key not in r["slice"]:
            raise KeyError(f"example {r['example_id']!r} has no slice field {key!r}; add it to its 'slice'")
        groups.setdefault(str(r["slice"][key]), []).append(r)
    return dict(sorted(groups.items()))


def by_slice(metric: Metric, key: str) -> Callable[[list[dict]], dict[str, float | None]]:
    """Apply `metric` per value of the slice field `key`."""

    def per_slice(records: list[dict]) -> dict[str, float | None]:
        return {value: metric(group) for value, group in group_by_slice(records, key).items()}

    return per_slice


def summary(records: list[dict]) -> dict:
    """Pass rate with its Wilson interval and counts."""
    passed = sum(r["passed"] for r in records)
    lo, hi = wilson_interval(passed, len(records))
    return {"pass_rate": pass_rate(records), "passed": passed, "n": len(records), "ci": [round(lo, 4), round(hi, 4)]}
