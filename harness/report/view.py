"""What the HTML report and the Markdown summary show, computed once from a run's results.

Pure functions over the results dict: examples paired across roles, regressions, per-suite
figures with intervals, slice breakdowns and gate deltas. No rendering here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.gating.stats import wilson_interval
from harness.roles import BASE, CANDIDATE, CHAMPION, ROLES

MAX_SLICE_VALUES = 10  # a slice key with more values (e.g. customer names) is a label, not a breakdown


@dataclass
class ExampleRow:
    """One item of one suite, with every role's record side by side."""

    suite: str
    example_id: str
    slice: dict
    prompt: list[dict]
    by_role: dict[str, dict] = field(default_factory=dict)
    slice_ids: str = ""  # the drill-down filter's indices of this row's slice labels

    @property
    def candidate(self) -> dict | None:
        return self.by_role.get(CANDIDATE)

    @property
    def failed(self) -> bool:
        return self.candidate is not None and not self.candidate["passed"]

    def passed(self, role: str) -> bool | None:
        rec = self.by_role.get(role)
        return None if rec is None else rec["passed"]

    @property
    def regressed_vs(self) -> list[str]:
        """The roles that passed this item while the candidate failed it (champion first)."""
        if not self.failed:
            return []
        return [r for r in (CHAMPION, BASE) if self.passed(r)]

    @property
    def critical_failed(self) -> bool:
        return bool(self.candidate and self.candidate["critical_failed"])

    @property
    def question(self) -> str:
        """The last user message: what the item asked."""
        users = [m["content"] for m in self.prompt if m.get("role") == "user"]
        return users[-1] if users else ""


def example_rows(results: dict) -> list[ExampleRow]:
    """Records grouped by (suite, example id), in the order the suites produced them."""
    rows: dict[tuple[str, str], ExampleRow] = {}
    for rec in results["examples"]:
        key = (rec["suite"], rec["example_id"])
        row = rows.get(key)
        if row is None:
            row = rows[key] = ExampleRow(rec["suite"], rec["example_id"], rec["slice"], rec["prompt"])
        row.by_role[rec["role"]] = rec
    return list(rows.values())


def regression_rank(row: ExampleRow) -> tuple:
    """Sort key for the worst regressions first: critical, then lost vs champion, then vs base."""
    lost = row.regressed_vs
    return (not row.critical_failed, CHAMPION not in lost, BASE not in lost)


def top_regressions(rows: list[ExampleRow]) -> list[ExampleRow]:
    """Items the candidate fails but a baseline passed, plus critical failures; worst first."""
    hits = [r for r in rows if r.regressed_vs or r.critical_failed]
    return sorted(hits, key=regression_rank)


@dataclass(frozen=True)
class Rate:
    """A pass rate with its 95% Wilson interval."""

    passed: int
    n: int

    @property
    def value(self) -> float | None:
        return self.passed / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(self.passed, self.n)


def item_rates(rows: list[ExampleRow], suite: str) -> dict[str, Rate]:
    """Per role, the share of this suite's items that passed, for the roles that ran."""
    out = {}
    for role in ROLES:
        got = [r.passed(role) for r in rows if r.suite == suite and r.passed(role) is not None]
        if got:
            out[role] = Rate(sum(got), len(got))
    return out


def suites_in_order(rows: list[ExampleRow], results: dict) -> list[str]:
    seen = list(dict.fromkeys(r.suite for r in rows))
    return seen + [s for s in results["suites"] if s not in seen]


def flat_metrics(metrics: dict, prefix: str = "") -> dict[str, object]:
    """Scalar leaves of a nested metrics dict, keys joined with '.'; a pair of numbers is an interval."""
    out: dict[str, object] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{name}."))
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            out[name] = tuple(value)
        elif value is None or isinstance(value, (int, float, str, bool)):
            out[name] = value
    return out


def metric_table(suite_metrics: dict) -> list[tuple[str, dict[str, object]]]:
    """(metric, {role: value}) rows over every role that reported the suite."""
    flat = {role: flat_metrics(m) for role, m in suite_metrics.items() if isinstance(m, dict)}
    names = list(dict.fromkeys(k for role in ROLES for k in flat.get(role, {})))
    return [(name, {role: flat[role].get(name) for role in ROLES if role in flat}) for name in names]


def slice_breakdowns(rows: list[ExampleRow], suite: str) -> dict[str, dict[str, dict[str, Rate]]]:
    """slice key -> value -> role -> Rate, for keys with 2..MAX_SLICE_VALUES values."""
    mine = [r for r in rows if r.suite == suite]
    keys = list(dict.fromkeys(k for r in mine for k in r.slice))
    out = {}
    for key in keys:
        values = sorted({str(r.slice[key]) for r in mine if key in r.slice})
        if not 2 <= len(values) <= MAX_SLICE_VALUES:
            continue
        out[key] = {}
        for value in values:
            group = [r for r in mine if str(r.slice.get(key)) == value]
            out[key][value] = {}
            for role in ROLES:
                got = [r.passed(role) for r in group if r.passed(role) is not None]
                if got:
                    out[key][value][role] = Rate(sum(got), len(got))
    return out


def slice_labels(rows: list[ExampleRow]) -> list[str]:
    """Every 'key=value' slice label in the run, sorted, for the drill-down filter."""
    return sorted({f"{k}={v}" for r in rows for k, v in r.slice.items()})


def gate_deltas(gate: dict) -> dict[str, float | None]:
    """The candidate's gate value minus the base's and the champion's value of the same metric."""
    out = {}
    for role in (BASE, CHAMPION):
        other = gate.get(f"{role}_value")
        if other is None and gate.get("baseline_role") == role:
            other = gate.get("baseline")
        out[role] = None if other is None or gate["value"] is None else gate["value"] - other
        out[f"{role}_value"] = other
    return out


def gate_state(gate: dict) -> str:
    return {True: "ok", False: "FAILED", None: "n/a"}[gate["passed"]]


def task_line(results: dict) -> str:
    """The run's task, as the report and summary name it ('' for results from before tasks)."""
    task = results.get("task") or {}
    return task.get("name", "")


def coverage_lines(results: dict) -> tuple[list[str], list[str]]:
    """(what was checked, what was not and why), one line each: a missing check is never silent."""
    cov = results.get("coverage")
    if not cov:
        return [], []
    checked = [f"{c['suite']} ({c['failure_mode'] or 'no failure mode named'})" for c in cov["checked"]]
    off = [f"{c['suite']} ({c['failure_mode'] or 'no failure mode named'}): {c['reason']}" for c in cov["off"]]
    off += [f"gate {gate}: {why}" for c in cov["checked"] for gate, why in c["gates_off"].items()]
    return checked, off


@dataclass(frozen=True)
class BlockedGate:
    """A failed gate and the items that moved it most."""

    name: str
    detail: str
    movers: list[dict]


def blocked_gates(results: dict) -> list[BlockedGate]:
    """The failed gates with their movers; none for results from before movers were recorded."""
    if "movers" not in results:
        return []
    movers = results["movers"]
    return [BlockedGate(g["name"], g["detail"], movers.get(g["name"], []))
            for g in results["gates"] if g["passed"] is False]
