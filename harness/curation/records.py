"""Data files read for checking: every line parsed, and every bad line reported instead of stopping.

`harness.data.examples.load_jsonl` stops at the first bad line, which is right for a run; a check wants
all of them, so here each line's error becomes a finding and reading goes on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.curation.findings import Finding, error
from harness.data.examples import Example, Kind, decode_line, parse_record, read_lines, record_kind
from harness.errors import TunegateError
from harness.fingerprints import file_sha256

Role = Literal["train", "eval"]  # train: trained or validated on (train, val); eval: evaluation items


@dataclass
class DataFile:
    """One JSONL file of examples as the checks see it."""

    path: Path
    name: str  # what the output calls it: train, val, golden, or the file name
    role: Role
    examples: list[Example]
    sha256: str
    records: int  # non-blank lines read, valid or not
    findings: list[Finding] = field(default_factory=list)  # lines that could not be read


def read_file(path: Path, name: str | None = None, kind: Kind | None = None) -> DataFile:
    """Read every line of `path`. `kind` forces the rules of a training ("train") or evaluation
    ("golden") file; without it each record's kind follows from whether it has a rubric, and the
    file is evaluation data if any record is. File-level problems (missing, not UTF-8) raise."""
    path = Path(path)
    examples: list[Example] = []
    findings: list[Finding] = []
    seen: dict[str, str] = {}
    records = 0
    any_eval = kind == "golden"
    for where, line in read_lines(path):
        records += 1
        lineno = int(where.rsplit(":", 1)[1])
        try:
            record = decode_line(line, where)
            record_is = kind or (record_kind(record) if isinstance(record, dict) else "train")
            any_eval |= record_is == "golden"
            ex = parse_record(record, where, record_is, path.parent, fallback_id=f"{path.stem}-{lineno}")
        except TunegateError as e:
            findings.append(error("schema", where, str(e).removeprefix(f"{where}: ")))
            continue
        if ex.id in seen:
            findings.append(error("schema", where, f"field 'id': duplicate id {ex.id!r} (first at {seen[ex.id]}); "
                                  "give every example its own id", other=seen[ex.id]))
            continue
        seen[ex.id] = where
        examples.append(ex)
    if records == 0:
        raise TunegateError(f"{path}: no examples; the file is empty")
    return DataFile(path, name or path.name, "eval" if any_eval else "train", examples, file_sha256(path), records,
                    findings)


def conversation_text(ex: Example) -> str:
    """What duplicates are judged on: every user and assistant turn. System turns are left out: a
    system prompt shared by every example would make every pair look alike."""
    return "\n".join(m["content"] for m in ex.messages if m["role"] != "system")


def prompt_text(ex: Example) -> str:
    """What leakage is judged on: the question, i.e. every turn but the system prompt and the final answer."""
    return "\n".join(m["content"] for m in ex.prompt() if m["role"] != "system")
