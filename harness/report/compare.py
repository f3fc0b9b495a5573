"""Per-example differences between two runs' results: what now fails, what now passes, what changed."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.roles import CANDIDATE


@dataclass
class RunDiff:
    """One role's records of run A against run B, matched by (suite, example id)."""

    broken: list[tuple[dict, dict]] = field(default_factory=list)  # passed in A, fails in B
    fixed: list[tuple[dict, dict]] = field(default_factory=list)  # failed in A, passes in B
    changed: list[tuple[dict, dict]] = field(default_factory=list)  # same verdict, different output
    unchanged: int = 0
    only_a: list[dict] = field(default_factory=list)
    only_b: list[dict] = field(default_factory=list)
    gates: list[tuple[str, float | None, float | None]] = field(default_factory=list)  # values that moved


def _by_key(results: dict, role: str) -> dict[tuple[str, str], dict]:
    return {(r["suite"], r["example_id"]): r for r in results["examples"] if r["role"] == role}


def compare(a: dict, b: dict, role: str = CANDIDATE) -> RunDiff:
    """How `role`'s answers moved from run `a` to run `b`."""
    ra, rb = _by_key(a, role), _by_key(b, role)
    diff = RunDiff()
    for key, x in ra.items():
        y = rb.get(key)
        if y is None:
            diff.only_a.append(x)
        elif x["passed"] and not y["passed"]:
            diff.broken.append((x, y))
        elif not x["passed"] and y["passed"]:
            diff.fixed.append((x, y))
        elif x["output"] != y["output"]:
            diff.changed.append((x, y))
        else:
            diff.unchanged += 1
    diff.only_b = [y for key, y in rb.items() if key not in ra]
    ga = {g["name"]: g["value"] for g in a["gates"]}
    gb = {g["name"]: g["value"] for g in b["gates"]}
    diff.gates = [(n, ga.get(n), gb.get(n)) for n in dict.fromkeys([*ga, *gb]) if ga.get(n) != gb.get(n)]
    return diff
