"""`tunegate data clean`: a cleaned copy of a data file, with duplicates dropped and PII replaced by
typed placeholders. The input is never changed; the copy is written atomically."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness import atomic
from harness.curation import dedup, pii
from harness.curation.records import DataFile, conversation_text, read_file
from harness.data.examples import read_lines
from harness.errors import TunegateError

TEXT_FIELDS = ("instruction", "input", "output", "reference")  # besides every message's content


@dataclass(frozen=True)
class CleanResult:
    read: int
    kept: int
    exact: int  # dropped: the same text as an earlier example once normalised
    near: int  # dropped: a near-duplicate of an earlier kept example
    pii: Counter  # placeholders written, per kind


def readable(f: DataFile, command: str) -> DataFile:
    """`f`, if every line could be read; else the first bad line as a one-line error."""
    if f.findings:
        first = f.findings[0]
        more = f" and {len(f.findings) - 1} more" if len(f.findings) > 1 else ""
        raise TunegateError(f"{first.where}: {first.message}{more}; `tunegate data {command}` needs every line "
                            "readable: fix them first (`tunegate data check` lists them all)")
    return f


def refuse_in_place(src: Path, *outputs: Path) -> None:
    for out in outputs:
        if out.resolve() == src.resolve():
            raise TunegateError(f"{out}: is the input file; data commands never change their input, "
                                "write the result to another path")


def scrub_record(record: dict) -> Counter:
    """Replace PII in the record's texts, in place; the count per kind."""
    counts: Counter = Counter()
    for message in record.get("messages", ()):
        message["content"], n = pii.scrub(message["content"])
        counts += n
    for key in TEXT_FIELDS:
        if isinstance(record.get(key), str):
            record[key], n = pii.scrub(record[key])
            counts += n
    return counts


def kept_indices(texts: list[str], threshold: float) -> tuple[list[int], int, int]:
    """Which texts to keep: each one unless it repeats a text already kept (exactly, then nearly).
    Returns the kept indices and how many were dropped as exact and as near duplicates."""
    exact_of = {i: g[0] for g in dedup.exact_groups(texts) for i in g[1:]}
    near_of: dict[int, list[int]] = {}
    for p in dedup.near_pairs(texts, threshold):
        near_of.setdefault(p.b, []).append(p.a)
    kept: list[int] = []
    kept_set: set[int] = set()
    exact = near = 0
    for i in range(len(texts)):
        if i in exact_of:
            exact += 1
        elif any(a in kept_set for a in near_of.get(i, ())):
            near += 1
        else:
            kept.append(i)
            kept_set.add(i)
    return kept, exact, near


def clean_file(src: Path, out: Path, near_duplicate: float) -> CleanResult:
    """Write `out`: `src` without its duplicates and with PII replaced. Lines that need no change are
    copied as they are."""
    src, out = Path(src), Path(out)
    refuse_in_place(src, out)
    f = readable(read_file(src), "clean")
    lines = dict(read_lines(src))
    kept, exact, near = kept_indices([conversation_text(ex) for ex in f.examples], near_duplicate)
    written, counts = [], Counter()
    for i in kept:
        line = lines[f.examples[i].origin]
        record = json.loads(line)
        n = scrub_record(record)
        counts += n
        written.append(json.dumps(record, ensure_ascii=False) if n else line)
    atomic.write_text(out, "".join(line + "\n" for line in written))
    return CleanResult(read=f.records, kept=len(kept), exact=exact, near=near, pii=counts)
