"""The verdict of a run, as pure functions: which gates failed, whether the run was complete, and so
whether the candidate may be promoted."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from harness.gating.gates import GateResult

Status = Literal["PROMOTED", "BLOCKED", "NOT PROMOTED"]


@dataclass(frozen=True)
class Verdict:
    status: Status
    failed_gates: list[str] = field(default_factory=list)
    promoted_adapter: str | None = None
    reason: str = ""

    @property
    def line(self) -> str:
        if self.status == "PROMOTED":
            return f"tunegate: PROMOTED {self.promoted_adapter}"
        if self.status == "BLOCKED":
            return f"tunegate: BLOCKED: {', '.join(self.failed_gates) or self.reason}"
        return f"tunegate: NOT PROMOTED: {self.reason}"


def decide(gates: Mapping[str, GateResult], expected: Iterable[str], candidate_id: str | None, *,
           pytest_status: int, complete: bool, aborted: str = "") -> Verdict:
    """PROMOTED only when every expected gate ran and held, nothing else failed, and the run was
    complete; BLOCKED on a failed gate, an abort or a failed test; else NOT PROMOTED, saying why."""
    failed = [name for name, g in gates.items() if g.passed is False]
    missing = sorted(set(expected) - set(gates))
    if failed:
        return Verdict("BLOCKED", failed_gates=failed)
    if aborted:
        return Verdict("BLOCKED", reason=aborted)
    if pytest_status != 0:
        return Verdict("BLOCKED", reason=f"tests failed or errored (pytest exit status {pytest_status})")
    if not complete or missing:
        why = "partial run (-k, -m or a narrowed path)" if not complete else f"gates not run: {', '.join(missing)}"
        return Verdict("NOT PROMOTED", reason=f"{why}; only a full run of every gating suite can promote")
    return Verdict("PROMOTED", promoted_adapter=candidate_id)


Coverage = Mapping[str, Mapping[str, set]]  # suite -> pytest parameter (or "gate") -> ids collected


def is_complete(collected: Coverage, expected: Coverage, deselected: bool) -> bool:
    """The partial-run rule: a run may promote only if nothing was deselected and every enabled suite
    was collected whole, every item of every parameter and every gate."""
    if deselected:
        return False
    for suite, params in expected.items():
        got = collected.get(suite, {})
        if any(got.get(param, set()) != ids for param, ids in params.items()):
            return False
    return True
