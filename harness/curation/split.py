"""`tunegate data split`: a deterministic train / holdout split of one data file, stratified by a
field when one is given, that cannot leak.

Deterministic: each example's side follows from a seeded hash of its content, so the same file
gives the same split whatever the order of its lines (and whether or not it has ids). Leak-free:
examples whose questions are near-duplicates (the check's leakage threshold) are kept together on
one side, so the split's two files pass `tunegate data check` between them.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness import atomic
from harness.curation import dedup
from harness.curation.clean import readable, refuse_in_place
from harness.curation.records import conversation_text, prompt_text, read_file
from harness.data.examples import normalise, read_lines
from harness.errors import TunegateError

MIN_HOLDOUT, MAX_HOLDOUT = 0.1, 0.2


@dataclass(frozen=True)
class SplitResult:
    train: Path
    holdout: Path
    n_train: int
    n_holdout: int
    strata: dict[str, tuple[int, int]]  # stratum value -> (train, holdout)


def field_value(record: dict, dotted: str, where: str) -> str:
    """The value at a dotted path (`meta.task`) of a record, as text; a clear error when it is missing."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise TunegateError(f"{where}: no field '{dotted}' to stratify by; add it to every record or "
                                "choose another --stratify field")
        value = value[part]
    if isinstance(value, (dict, list)):
        raise TunegateError(f"{where}: field '{dotted}' is not a single value; stratify by a text or number field")
    return str(value)


def split_file(src: Path, out_dir: Path, holdout: float, seed: int, stratify: str | None,
               leakage: float) -> SplitResult:
    """Write `<stem>.train.jsonl` and `<stem>.holdout.jsonl` into `out_dir`: each line of `src` as it
    is, in its original order, on one side."""
    if not MIN_HOLDOUT <= holdout <= MAX_HOLDOUT:
        raise TunegateError(f"--holdout {holdout}: must be between {MIN_HOLDOUT} and {MAX_HOLDOUT} (10-20% of the "
                            "examples held out)")
    src, out_dir = Path(src), Path(out_dir)
    train_path, holdout_path = out_dir / f"{src.stem}.train.jsonl", out_dir / f"{src.stem}.holdout.jsonl"
    refuse_in_place(src, train_path, holdout_path)
    f = readable(read_file(src), "split")
    lines = dict(read_lines(src))
    examples = f.examples
    strata = [field_value(json.loads(lines[ex.origin]), stratify, ex.origin) if stratify else "all"
              for ex in examples]
    group_of = dedup.clusters(len(examples), dedup.near_pairs([prompt_text(ex) for ex in examples], leakage))
    groups: dict[int, list[int]] = {}
    for i, g in enumerate(group_of):
        groups.setdefault(g, []).append(i)

    content_hash = [hashlib.sha256(f"{seed}:{normalise(conversation_text(ex))}".encode()).hexdigest()
                    for ex in examples]
    # A group is ranked by, and counts toward the stratum of, its member with the smallest hash: neither
    # depends on the order of the lines. Groups are taken in rank order while they fit in their stratum's share.
    lead = {g: min(members, key=content_hash.__getitem__) for g, members in groups.items()}
    held: set[int] = set()
    sizes = Counter(strata)
    taken: Counter = Counter()
    for g in sorted(groups, key=lambda g: content_hash[lead[g]]):
        stratum = strata[lead[g]]
        if taken[stratum] + len(groups[g]) <= round(sizes[stratum] * holdout):
            taken[stratum] += len(groups[g])
            held.update(groups[g])
    train_lines = [lines[ex.origin] for i, ex in enumerate(examples) if i not in held]
    holdout_lines = [lines[ex.origin] for i, ex in enumerate(examples) if i in held]
    if not holdout_lines or not train_lines:
        raise TunegateError(f"{src}: {len(examples)} examples are too few to hold out {holdout:.0%} "
                            "(or they are all near-duplicates of each other); add examples")
    atomic.write_text(train_path, "".join(line + "\n" for line in train_lines))
    atomic.write_text(holdout_path, "".join(line + "\n" for line in holdout_lines))
    held_in = Counter(strata[i] for i in held)
    per = {s: (sizes[s] - held_in[s], held_in[s]) for s in sorted(sizes)}
    return SplitResult(train_path, holdout_path, len(train_lines), len(holdout_lines), per)
