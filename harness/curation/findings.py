"""Findings of the data checks: what is wrong, where (file:line), and how bad.

Errors stop training (the training fixture refuses to train on them); warnings are shown in the
check's output and the dataset card, and never block.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]
# The kinds, in the order the command output and the card list them.
KINDS = ("schema", "consistency", "template", "length", "pii", "leakage", "duplicate", "near_duplicate")


@dataclass(frozen=True)
class Finding:
    """One problem at one place. `where` is `file:line` (the line of the JSONL record), `message`
    says what is wrong and how to fix it, `other` names the second place of a pair (duplicates, leakage)."""

    severity: Severity
    kind: str
    where: str
    message: str
    other: str | None = None

    def line(self) -> str:
        """The finding as one printable line."""
        return f"{self.where}: {self.severity} [{self.kind}] {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


def error(kind: str, where: str, message: str, other: str | None = None) -> Finding:
    return Finding("error", kind, where, message, other)


def warning(kind: str, where: str, message: str, other: str | None = None) -> Finding:
    return Finding("warning", kind, where, message, other)
