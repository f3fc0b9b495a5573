"""The dataset card: what a run trained and was evaluated on, as plain JSON for results.json and the
report: per file its content hash, counts, length histogram and the balance of its labels and
slices; and the duplicates, PII and leakage the check found."""
from __future__ import annotations

import statistics
from collections import Counter

from harness.curation.checks import CheckReport
from harness.curation.findings import KINDS
from harness.curation.records import DataFile

HISTOGRAM_BINS = 12
MAX_BALANCE_VALUES = 12  # a field with more distinct values (names, ids) is summarised by its count
MAX_FINDINGS = 200  # listed in the card; the counts cover all of them


def histogram(values: list[int], bins: int = HISTOGRAM_BINS) -> dict:
    """Equal-width bins from 0 to the largest value: `edges` has one more entry than `counts`."""
    top = max(values)
    width = max(1, -(-top // bins))  # ceiling division: the last bin holds the maximum
    counts = [0] * bins
    for v in values:
        counts[min(v // width, bins - 1)] += 1
    return {"edges": [i * width for i in range(bins + 1)], "counts": counts}


def length_stats(values: list[int], unit: str) -> dict:
    ordered = sorted(values)
    return {"unit": unit, "n": len(values), "min": ordered[0], "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1],
            "histogram": histogram(values)}


def balance(f: DataFile) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Value counts of each scalar `meta` and `slice` field (`meta.task`, `slice.region`), and, for
    fields with too many values to chart, their number of distinct values."""
    counts: dict[str, Counter] = {}
    for ex in f.examples:
        for prefix, fields in (("meta", ex.meta), ("slice", ex.slice)):
            for key, value in fields.items():
                if isinstance(value, (str, int, float, bool)):
                    counts.setdefault(f"{prefix}.{key}", Counter())[str(value)] += 1
    shown = {k: dict(c.most_common()) for k, c in counts.items() if len(c) <= MAX_BALANCE_VALUES}
    distinct = {k: len(c) for k, c in counts.items() if len(c) > MAX_BALANCE_VALUES}
    return shown, distinct


def build(report: CheckReport) -> dict:
    """The card of one check (schema: `data_card` in harness/schemas/results.schema.json)."""
    files = []
    for f in report.files:
        tokens = [n for n in report.tokens.get(f.name, []) if n is not None]
        if tokens:
            lengths = length_stats(tokens, "tokens")
        elif f.examples:  # no tokenizer: words are the next best measure
            lengths = length_stats([len(" ".join(m["content"] for m in ex.messages).split()) for ex in f.examples],
                                   "words")
        else:
            lengths = None
        shown, distinct = balance(f)
        kinds = Counter(x.kind for x in report.findings if x.where.rsplit(":", 1)[0] == str(f.path))
        files.append({
            "name": f.name, "path": str(f.path), "role": f.role, "sha256": f.sha256, "records": f.records,
            "examples": len(f.examples), "lengths": lengths, "truncated": report.truncated.get(f.name),
            "balance": shown, "distinct": distinct, "findings": dict(kinds),
        })
    by_kind = {k: Counter(x.severity for x in report.findings if x.kind == k) for k in KINDS}
    return {
        "files": files,
        "eval_sets": report.eval_sets,
        "settings": {"near_duplicate_threshold": report.settings.near_duplicate,
                     "leakage_threshold": report.settings.leakage, "max_length": report.settings.max_length},
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "by_kind": {k: dict(c) for k, c in by_kind.items() if c},
        "findings": [x.as_dict() for x in report.findings[:MAX_FINDINGS]],
        "seconds": round(report.seconds, 2),
    }
