"""Gates: typed pass/fail decisions over a suite's per-item outcomes, with their statistics.

Three kinds:
- absolute: the candidate's pass rate reaches a bar (reported with its Wilson interval);
- non-inferiority against a baseline role (base or champion) on the same items: the gate
  blocks when the drop in pass rate exceeds the margin AND a one-sided McNemar exact test
  says the drop is significant at `alpha`. A gate blocks on evidence of harm; an absolute bar
  is always paired with it because small suites cannot prove the absence of harm;
- all-pass: every item in a named set passes (critical examples).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from harness.stats import mcnemar_exact, wilson_interval


@dataclass(frozen=True)
class GateResult:
    name: str  # "<suite>.<gate>", e.g. "golden.pass_rate"
    suite: str
    kind: Literal["absolute", "noninferior", "all_pass"]
    passed: bool | None  # None: not applicable in this run (e.g. no champion yet)
    value: float | None
    threshold: float | None = None
    baseline_role: str | None = None
    baseline: float | None = None
    margin: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    detail: str = ""

    def describe(self) -> str:
        """One line for the terminal and the assertion message."""
        state = {True: "ok", False: "FAILED", None: "n/a"}[self.passed]
        return f"{self.name}: {state} ({self.detail})"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci else None
        return d


def _rate(outcomes: list[bool]) -> float:
    return sum(outcomes) / len(outcomes) if outcomes else 0.0


def absolute_gate(name: str, suite: str, outcomes: list[bool], min_rate: float) -> GateResult:
    """The candidate's pass rate must reach `min_rate`."""
    value = _rate(outcomes)
    ci = wilson_interval(sum(outcomes), len(outcomes))
    passed = value >= min_rate
    return GateResult(
        name, suite, "absolute", passed, round(value, 4), threshold=min_rate, ci=(round(ci[0], 4), round(ci[1], 4)),
        detail=f"pass rate {value:.3f} (95% CI {ci[0]:.3f}-{ci[1]:.3f}) {'>=' if passed else '<'} bar {min_rate}",
    )


def noninferiority_gate(
    name: str, suite: str, candidate: list[bool], baseline: list[bool] | None, baseline_role: str,
    margin: float, alpha: float,
) -> GateResult:
    """Block when the candidate is worse than the baseline by more than `margin`, significantly."""
    if baseline is None:
        return GateResult(name, suite, "noninferior", None, None, baseline_role=baseline_role, margin=margin,
                          detail=f"no {baseline_role} to compare with")
    value, base = _rate(candidate), _rate(baseline)
    test = mcnemar_exact(candidate, baseline)
    drop = base - value
    passed = not (drop > margin and test.p_worse < alpha)
    verdict = "within margin" if drop <= margin else ("significant" if not passed else "not significant")
    return GateResult(
        name, suite, "noninferior", passed, round(value, 4), baseline_role=baseline_role, baseline=round(base, 4),
        margin=margin, p_value=round(test.p_worse, 6),
        detail=(f"candidate {value:.3f} vs {baseline_role} {base:.3f}, drop {drop:+.3f} {verdict} "
                f"(margin {margin}; McNemar exact p={test.p_worse:.3g}, "
                f"{test.regressions} regressed / {test.improvements} improved)"),
    )


def all_pass_gate(name: str, suite: str, failed_ids: list[str], total: int) -> GateResult:
    """Every item in the set must pass (e.g. critical examples)."""
    passed = not failed_ids
    shown = ", ".join(failed_ids[:5]) + (" ..." if len(failed_ids) > 5 else "")
    return GateResult(
        name, suite, "all_pass", passed, round(1 - len(failed_ids) / total, 4) if total else 1.0, threshold=1.0,
        detail=f"{total - len(failed_ids)}/{total} examples pass their critical checks"
        + (f"; failed: {shown}" if shown else ""),
    )
