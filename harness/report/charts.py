"""The report's charts: matplotlib (Agg) figures rendered to SVG text for inlining in the page.

Labels come from data (slice values, gate names), so text is kept as SVG <text>, which matplotlib
XML-escapes, and mathtext parsing is off so a '$' in a label is just a dollar sign.
"""
from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # no display on CI machines; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from harness.report.view import Rate  # noqa: E402
from harness.roles import BASE, CANDIDATE, CHAMPION, ROLES  # noqa: E402

COLORS = {BASE: "#9a9a9a", CANDIDATE: "#1f6fd1", CHAMPION: "#e08a1e"}
RC = {
    "svg.fonttype": "none",  # real <text>: escaped by matplotlib, selectable, smaller than glyph paths
    "svg.hashsalt": "tunegate",  # stable ids, so re-rendering the same run gives the same page
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PREAMBLE = re.compile(r"\A.*?(?=<svg)", re.S)
_STRIP = re.compile(r"<metadata>.*?</metadata>|<style[^>]*>.*?</style>", re.S)


def to_svg(fig) -> str:
    """The figure as an inline <svg> element: no XML prolog, metadata or <style> (the page's
    stylesheet carries matplotlib's one rule, so the CSP needs no hash per chart)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return _STRIP.sub("", _PREAMBLE.sub("", buf.getvalue(), count=1))


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "\u2026"


def rates_chart(rates: dict[str, dict[str, Rate]], title: str) -> str:
    """Grouped horizontal bars: share of items passed per group and role, with 95% CI whiskers."""
    groups = list(rates)
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.42 * len(groups) * 1.2))
        height = 0.8 / len(ROLES)
        for i, role in enumerate(ROLES):
            ys, xs, errs = [], [], [[], []]
            for g, group in enumerate(groups):
                r = rates[group].get(role)
                if r is None or r.value is None:
                    continue
                lo, hi = r.ci
                ys.append(g + (i - 1) * height)
                xs.append(r.value)
                errs[0].append(max(0.0, r.value - lo))
                errs[1].append(max(0.0, hi - r.value))
            if xs:
                bars = ax.barh(ys, xs, height=height * 0.9, color=COLORS[role], label=role, xerr=errs,
                               error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333"})
                # the value at the bar's root: a zero-height bar is otherwise invisible
                ax.bar_label(bars, labels=[f"{x:.2f}" for x in xs], label_type="edge", padding=2, fontsize=6,
                             color="#333")
        ax.set_yticks(range(len(groups)), [_short(g) for g in groups])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of items passed (95% Wilson CI)")
        ax.set_title(title, loc="left")
        # Above the axes, not over the bars: a bar can reach any x.
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, fontsize=7, frameon=False)
        return to_svg(fig)


def loss_chart(loss_history: dict) -> str | None:
    """Train and val loss per optimizer step, or None without a training history."""
    train = loss_history.get("train") or []
    val = loss_history.get("val") or []
    if not train and not val:
        return None
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 2.8))
        for points, label, color, marker in ((train, "train", "#1f6fd1", None), (val, "val", "#c2302a", "o")):
            if points:
                steps, losses = zip(*points)
                ax.plot(steps, losses, label=label, color=color, marker=marker, markersize=3, linewidth=1.2)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.set_title("training loss", loc="left")
        ax.legend(frameon=False)
        return to_svg(fig)


def trend_chart(suite: str, runs: list[tuple[str, str, dict[str, float | None]]], gate_names: list[str],
                current: str) -> str:
    """Each gate's candidate value over past runs (oldest left); the current run is marked, and
    runs that were not promoted are drawn hollow. Gates whose values are the same in every run
    (e.g. a pass-rate bar and its non-inferiority tests) share one line and one legend entry."""
    series: dict[tuple, list[str]] = {}
    for name in gate_names:
        values = tuple(values.get(name) for _, _, values in runs)
        if any(v is not None for v in values):
            series.setdefault(values, []).append(name.removeprefix(f"{suite}."))
    status = [s for _, s, _ in runs]
    ids = [r for r, _, _ in runs]
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 2.6))
        for k, (values, names) in enumerate(series.items()):
            color = plt.get_cmap("tab10")(k % 10)
            pts = [(x, y) for x, y in enumerate(values) if y is not None]
            px, py = zip(*pts)
            ax.plot(px, py, color=color, linewidth=1, label=_short(" = ".join(names), 44))
            for x, y in pts:
                face = color if status[x] == "PROMOTED" else "white"
                ax.plot([x], [y], marker="o", markersize=4, color=color, markerfacecolor=face)
        if current in ids:
            ax.axvline(ids.index(current), color="#bbb", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(runs)), [r[4:15] for r in ids], rotation=35, ha="right", fontsize=7)  # MMDD-HHMMSS
        ax.set_xlim(-0.5, max(len(runs) - 0.5, 0.5))
        ax.set_title(f"{suite}: gate values, last {len(runs)} runs (hollow = not promoted)", loc="left")
        ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return to_svg(fig)


def length_histogram(name: str, lengths: dict, max_length: int | None) -> str:
    """A data file's example lengths as a histogram (from the dataset card), with the training
    `max_length` drawn where it falls inside the range."""
    edges, counts = lengths["histogram"]["edges"], lengths["histogram"]["counts"]
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.4, 2.4))
        ax.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge", color=COLORS[CANDIDATE],
               edgecolor="white", linewidth=0.5)
        if max_length is not None and max_length <= edges[-1]:
            ax.axvline(max_length, color="#c2302a", linewidth=1, linestyle="--", label=f"max_length {max_length}")
            ax.legend(frameon=False, fontsize=7)
        ax.set_xlabel(f"{lengths['unit']} per example")
        ax.set_ylabel("examples")
        ax.set_title(f"{_short(name, 40)}: {lengths['n']} examples, median {lengths['median']:g}, "
                     f"max {lengths['max']}", loc="left")
        return to_svg(fig)
