"""Gates: typed pass/fail decisions over a suite's per-item outcomes, with their statistics.

Kinds:
- absolute: a metric of the candidate reaches a bar (a floor, or a ceiling for rates where
  lower is better), reported with its interval;
- noninferior: the candidate against a baseline role (base or champion) on the same items.
  The gate blocks when the candidate is worse than the baseline by more than the margin AND a
  paired test says it is significantly worse (McNemar exact for pass/fail items, a clustered
  paired test, or a paired bootstrap CI). A gate blocks on evidence of harm; an absolute bar is
  paired with it because small suites cannot prove the absence of harm;
- all_pass: every item in a named set passes (critical examples, must-have behaviours).

Every result carries the candidate's value and, when they ran, the base's and the champion's
values of the same metric, so a reader sees all three whichever comparison decided.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from harness.gating.stats import mcnemar_exact, wilson_interval


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
    base_value: float | None = None  # context: the base's value of the same metric, if it ran
    champion_value: float | None = None  # context: the champion's value, if there is one

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


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def bar_gate(name: str, suite: str, value: float, bar: float, *, what: str = "pass rate",
             higher_is_better: bool = True, ci: tuple[float, float] | None = None, **context) -> GateResult:
    """The candidate's metric must reach `bar` (at least it, or at most it when lower is better)."""
    passed = value >= bar if higher_is_better else value <= bar
    op = (">=" if passed else "<") if higher_is_better else ("<=" if passed else ">")
    shown_ci = f" (95% CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    return GateResult(
        name, suite, "absolute", passed, _r(value), threshold=bar, ci=(_r(ci[0]), _r(ci[1])) if ci else None,
        detail=f"{what} {value:.3f}{shown_ci} {op} bar {bar}{_context(context)}",
        base_value=_r(context.get("base_value")), champion_value=_r(context.get("champion_value")),
    )


def _context(context: dict) -> str:
    parts = [f"{role.removesuffix('_value')} {v:.3f}" for role, v in context.items() if v is not None]
    return f"; {', '.join(parts)}" if parts else ""


def absolute_gate(name: str, suite: str, outcomes: list[bool], min_rate: float, *, what: str = "pass rate",
                  higher_is_better: bool = True, **context) -> GateResult:
    """The share of True outcomes must reach `min_rate` (or stay at most it), with its Wilson interval."""
    lo, hi = wilson_interval(sum(outcomes), len(outcomes))
    return bar_gate(name, suite, _rate(outcomes), min_rate, what=what, higher_is_better=higher_is_better,
                    ci=(lo, hi), **context)


def regression_gate(name: str, suite: str, value: float, baseline: float | None, baseline_role: str, margin: float,
                    significant: bool, test: str, *, what: str = "pass rate", higher_is_better: bool = True,
                    p_value: float | None = None, ci: tuple[float, float] | None = None,
                    **context) -> GateResult:
    """Block when the candidate is worse than the baseline by more than `margin` and `significant`
    (the paired test's verdict, described by `test`) says the worsening is real."""
    if baseline is None:
        return GateResult(name, suite, "noninferior", None, _r(value), baseline_role=baseline_role, margin=margin,
                          detail=f"no {baseline_role} to compare with")
    worse_by = (baseline - value) if higher_is_better else (value - baseline)
    passed = not (worse_by > margin and significant)
    verdict = "within margin" if worse_by <= margin else ("significant" if not passed else "not significant")
    return GateResult(
        name, suite, "noninferior", passed, _r(value), baseline_role=baseline_role, baseline=_r(baseline),
        margin=margin, p_value=None if p_value is None else round(p_value, 6),
        ci=(_r(ci[0]), _r(ci[1])) if ci else None,
        detail=f"{what} {value:.3f} vs {baseline_role} {baseline:.3f}, worse by {worse_by:+.3f}: {verdict} "
               f"(margin {margin}; {test})",
        base_value=_r(context.get("base_value")), champion_value=_r(context.get("champion_value")),
    )


def noninferiority_gate(
    name: str, suite: str, candidate: list[bool], baseline: list[bool] | None, baseline_role: str,
    margin: float, alpha: float, *, what: str = "pass rate", higher_is_better: bool = True, **context,
) -> GateResult:
    """Paired yes/no items: block when the candidate's rate of True is worse than the baseline's by
    more than `margin` and a one-sided McNemar exact test puts the worsening below `alpha`. True is
    good (a pass), or bad with `higher_is_better=False` (e.g. a flipped answer), so the gate's value
    is in the same unit as the metric the report shows beside it."""
    if baseline is None:
        return regression_gate(name, suite, _rate(candidate), None, baseline_role, margin, False, "",
                               higher_is_better=higher_is_better, **context)
    flip = not higher_is_better  # McNemar counts regressions with True = good
    test = mcnemar_exact([x != flip for x in candidate], [x != flip for x in baseline])
    return regression_gate(
        name, suite, _rate(candidate), _rate(baseline), baseline_role, margin, test.p_worse < alpha,
        f"McNemar exact p={test.p_worse:.3g}, {test.regressions} regressed / {test.improvements} improved",
        what=what, higher_is_better=higher_is_better, p_value=test.p_worse, **context,
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
