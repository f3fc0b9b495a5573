"""The self-contained HTML report of one run: jinja2 with autoescaping, inline CSS, SVG charts and
one inline filter script admitted by its hash in the page's Content-Security-Policy.

Every string from a run (model outputs, prompts, ids, slice values, gate details) is untrusted and
reaches the page only through autoescaped template variables or matplotlib's escaped SVG text.
"""
from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib import resources

import jinja2
from markupsafe import Markup

from harness.report import charts
from harness.report.view import (
    MAX_SLICE_VALUES,
    ROLES,
    blocked_gates,
    coverage_lines,
    example_rows,
    gate_deltas,
    gate_state,
    item_rates,
    metric_table,
    slice_breakdowns,
    slice_labels,
    suites_in_order,
    task_line,
)

TREND_RUNS = 30  # the newest runs drawn in the trend charts


def _asset(name: str) -> str:
    return resources.files("harness.report").joinpath(f"templates/{name}").read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def csp(script: str, css: str) -> str:
    """Nothing loads from anywhere; only our script and stylesheet run, pinned by hash. Style
    attributes stay allowed because matplotlib's SVG carries its fills and strokes in them; a style
    attribute cannot run code, and no untrusted text reaches one."""
    return (f"default-src 'none'; script-src {_sha256(script)}; style-src-elem {_sha256(css)}; "
            "style-src-attr 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


def _num(value) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"{_num(value[0])}\u2013{_num(value[1])}"
    return str(value)


def _signed(value) -> str:
    return "\u2014" if value is None else f"{value:+.3f}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # on for every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["signed"] = _signed
    return env


def _trend_svgs(history_runs: list, current: str) -> list[Markup]:
    runs = [(r.run_id, r.status, r.gate_values()) for r in history_runs[-TREND_RUNS:]]
    suites: dict[str, list[str]] = {}
    for r in history_runs[-TREND_RUNS:]:
        for g in r.gates:
            if g["value"] is not None and g["name"] not in suites.setdefault(g["suite"], []):
                suites[g["suite"]].append(g["name"])
    return [Markup(charts.trend_chart(suite, runs, names, current)) for suite, names in suites.items() if names]


def render(results: dict, history_runs: list, agreement: list) -> str:
    """The page for one run. `history_runs` are the history store's runs, oldest first (this one
    included); `agreement` is the human-review agreement of this run, if any grades exist."""
    rows = example_rows(results)
    labels = slice_labels(rows)
    index = {label: i for i, label in enumerate(labels)}
    for row in rows:
        row.slice_ids = " ".join(str(index[f"{k}={v}"]) for k, v in row.slice.items())
    suite_names = suites_in_order(rows, results)
    rates = {s: item_rates(rows, s) for s in suite_names}
    rates = {s: r for s, r in rates.items() if r}
    slice_svgs = [
        Markup(charts.rates_chart(by_value, f"{suite}: pass rate by {key}"))
        for suite in suite_names for key, by_value in slice_breakdowns(rows, suite).items()
    ]
    suites = []
    for name in suite_names:
        table = metric_table(results["suites"].get(name, {}))
        suites.append({"name": name, "table": table,
                       "roles": [r for r in ROLES if r in results["suites"].get(name, {})]})
    gates = [{**g, "state": gate_state(g), "deltas": gate_deltas(g)} for g in results["gates"]]
    gates.sort(key=lambda g: g["state"] != "FAILED")  # failed gates first; stable, so suite order otherwise
    card = results.get("data_card")
    length_svgs = [
        Markup(charts.length_histogram(f["name"], f["lengths"], card["settings"]["max_length"] if f["role"] == "train"
                                       else None))
        for f in (card["files"] if card else []) if f["lengths"]
    ]
    training = results.get("training") or {}
    loss = charts.loss_chart(training.get("loss_history") or {})
    checked, not_checked = coverage_lines(results)
    script, css = _asset("report.js"), _asset("report.css")
    return environment().get_template("report.html.j2").render(
        r=results, verdict=results["verdict"], gates=gates, task=task_line(results), checked=checked,
        not_checked=not_checked, blocked=blocked_gates(results), suites=suites, rows=rows, roles=ROLES,
        rates_svg=Markup(charts.rates_chart(rates, "share of each suite's items passed")) if rates else None,
        loss_svg=Markup(loss) if loss else None, slice_svgs=slice_svgs, max_slice_values=MAX_SLICE_VALUES,
        trend_svgs=_trend_svgs(history_runs, results["run_id"]), n_runs=len(history_runs),
        agreement=agreement, suite_names=suite_names, slice_labels=labels, card=card, length_svgs=length_svgs,
        # Trusted package files, inserted verbatim: escaping would change the text their hashes pin.
        script=Markup(script), css=Markup(css), csp=csp(script, css),
    )
