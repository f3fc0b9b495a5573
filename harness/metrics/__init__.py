"""Metrics: pure functions over lists of scored records (dicts with at least `passed` and `slice`)."""
from harness.metrics.aggregate import by_slice, check_rate, group_by_slice, pass_rate, summary

__all__ = ["by_slice", "check_rate", "group_by_slice", "pass_rate", "summary"]
