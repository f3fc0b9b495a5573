"""The explicit registry of evaluation suites: their data, their gates and when they are enabled.

The per-suite pytest files live in `suites/`; this registry is what the plugin and the verdict
consult to know which gates a complete run must have produced.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.config import Config


@dataclass(frozen=True)
class Suite:
    name: str
    gates: tuple[str, ...]
    data_path: Callable[[Config], Path]
    enabled: Callable[[Config], bool]
    kind: str = "golden"  # how its data file is validated (see harness.data.load_jsonl)


SUITES: dict[str, Suite] = {
    "golden": Suite(
        name="golden",
        gates=("pass_rate", "noninferior_base", "noninferior_champion", "critical"),
        data_path=lambda c: c.suites.golden.path,
        enabled=lambda c: c.suites.golden.enabled,
    ),
}
