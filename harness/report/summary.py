"""The Markdown summary of one run, sized for a pull-request comment: the verdict, the gates with
their deltas against base and champion, and the worst regressed examples.

GitHub rejects comments over 65,536 characters; the summary stays under MAX_CHARS whatever the
run's size: cells are cut to a fixed length and rows are dropped (and counted) once the budget
is spent. Model output is untrusted: it is escaped so it cannot add Markdown or HTML, mention
people or close the table.
"""
from __future__ import annotations

import re

from harness.report.view import (
    blocked_gates,
    coverage_lines,
    example_rows,
    gate_deltas,
    gate_state,
    task_line,
    top_regressions,
)

MAX_CHARS = 60_000  # below GitHub's 65,536 with room for a workflow's own header
MAX_EXAMPLES = 15
MOVER_CELL = 120  # characters of a question or answer shown under a failed gate
TERMINAL_CELL = 70
CELL = 160  # characters of a model output shown per cell
ICON = {"ok": "\u2705 ok", "FAILED": "\u274c FAILED", "n/a": "\u2796 n/a"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_text(text: str, limit: int = CELL) -> str:
    """One line of untrusted text, safe in a Markdown table cell: whitespace collapsed, cut to
    `limit`, HTML and Markdown punctuation escaped, @mentions defused."""
    one_line = " ".join(str(text).split())
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "\u2026"
    escaped = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = _MD_SPECIAL.sub(r"\\\1", escaped)
    return escaped.replace("@", "&#64;")


def md_code(text: str, limit: int) -> str:
    """Text for a `code span` in a table cell: no backticks (they would end the span) and '|'
    escaped (GFM splits table cells on it even inside code)."""
    one_line = " ".join(str(text).replace("`", "'").split())
    if len(one_line) > limit:
        one_line = one_line[: limit - 1] + "\u2026"
    return one_line.replace("|", "\\|")


def _num(x) -> str:
    return "\u2014" if x is None else f"{x:.3f}"


def _delta(d: float | None, other: float | None) -> str:
    return "\u2014" if d is None else f"{d:+.3f} ({_num(other)})"


def _gate_lines(results: dict) -> list[str]:
    lines = ["| gate | result | candidate | vs base | vs champion |", "|---|---|---|---|---|"]
    for g in sorted(results["gates"], key=lambda g: g["passed"] is not False):  # failed first
        d = gate_deltas(g)
        lines.append(f"| `{md_code(g['name'], 60)}` | {ICON[gate_state(g)]} | {_num(g['value'])} | "
                     f"{_delta(d['base'], d['base_value'])} | {_delta(d['champion'], d['champion_value'])} |")
    return lines


def _example_line(row) -> str:
    cand = row.candidate
    lost = ", ".join(row.regressed_vs) or "\u2014"
    crit = " (critical)" if row.critical_failed else ""
    return (f"| {md_text(row.suite, 30)} | {md_text(row.example_id, 60)}{crit} | {lost} | "
            f"{md_text(cand['output'])} | {md_text(cand['reason'], 100)} |")


def _coverage_md(results: dict) -> list[str]:
    checked, off = coverage_lines(results)
    if not checked and not off:
        return []
    lines = [f"\nChecked: {md_text(', '.join(checked) or 'nothing', 1000)}"]
    lines += [f"\n**Not checked:** {md_text(line, 400)}" for line in off]
    return lines


def _blocked_md(results: dict) -> list[str]:
    """Under each failed gate, the items that moved it most: asked, candidate, baseline."""
    blocked = blocked_gates(results)
    if not blocked:
        return []
    out = ["", "### Why it was blocked", ""]
    for g in blocked:
        out += [f"**`{md_code(g.name, 60)}`**: {md_text(g.detail, 300)}", ""]
        if not g.movers:
            out += ["No single item stands out: the gate is a figure over every item.", ""]
            continue
        out += ["| asked | candidate answered | baseline answered |", "|---|---|---|"]
        for m in g.movers:
            base = f"{m['baseline_role']}: {md_text(m['baseline'], MOVER_CELL)}" if m["baseline_role"] else "\u2014"
            why = f" ({md_text(m['why'], 80)})" if m["why"] else ""
            out.append(f"| {md_text(m['question'], MOVER_CELL)} | {md_text(m['candidate'], MOVER_CELL)}{why} | "
                       f"{base} |")
        out.append("")
    return out


def terminal_lines(results: dict) -> list[str]:
    """What the terminal shows above the verdict: the task, what was not checked, and under each failed
    gate the items that moved it most, one line each."""
    lines = [f"tunegate: task {task_line(results)}"] if task_line(results) else []
    _, off = coverage_lines(results)
    lines += [f"tunegate: not checked: {line}" for line in off]
    for g in blocked_gates(results):
        lines.append(f"tunegate: {g.name} FAILED: {g.detail}")
        for m in g.movers:
            base = f"; {m['baseline_role']}: {clip(m['baseline'], TERMINAL_CELL)}" if m["baseline_role"] else ""
            lines.append(f"  asked {clip(m['question'], TERMINAL_CELL)}: candidate: "
                         f"{clip(m['candidate'], TERMINAL_CELL)}{base}")
    return lines


def clip(text: str, n: int) -> str:
    """One printable line of at most `n` characters (model output may hold newlines or terminal escapes)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return repr(line if len(line) <= n else line[: n - 1] + "\u2026")


def render(results: dict, report_link: str | None = None, max_chars: int = MAX_CHARS) -> str:
    """The summary; `report_link` (a URL or path to the HTML report) is shown when given."""
    v = results["verdict"]
    head = [f"## tunegate: {v['status']}", "", md_text(v["line"], 500), ""]
    cand = (results.get("candidate") or {}).get("id") or "none"
    champ = (results.get("champion") or {}).get("id") or "none yet"
    commit = (results.get("git_commit") or "unknown")[:12]
    task = f"task `{md_code(task_line(results), 100)}` \u00b7 " if task_line(results) else ""
    head.append(f"{task}run `{results['run_id']}` \u00b7 commit `{md_code(commit, 12)}` \u00b7 candidate "
                f"`{md_code(cand, 40)}` \u00b7 champion `{md_code(champ, 40)}`")
    card = results.get("data_card")
    if card:
        files = ", ".join(f"{md_text(f['name'], 40)} {f['examples']} (`{f['sha256'][:10]}`)" for f in card["files"])
        kinds = ", ".join(f"{md_text(k, 30)} {sum(n.values())}" for k, n in card["by_kind"].items())
        head.append(f"\nData check: {card['errors']} errors, {card['warnings']} warnings"
                    f"{' (' + kinds + ')' if kinds else ''} \u00b7 {files}")
    head += _coverage_md(results)
    head += _blocked_md(results)
    if report_link:
        head.append(f"\nFull report with every example: {md_text(report_link, 300)} "
                    "(in CI, the tunegate\\-report artifact)")
    head += ["", "### Gates", "", "Values are the candidate's; deltas are candidate minus base / champion "
             "(their value in brackets).", "", ""]
    rows = top_regressions(example_rows(results))
    out = "\n".join(head)
    gate_lines = _gate_lines(results)
    tail_note = "\n\n_{} more {} in the HTML report._"
    kept = 0
    for line in gate_lines:
        if len(out) + len(line) + 200 > max_chars:
            break
        out += line + "\n"
        kept += 1
    if kept < len(gate_lines):
        return out + tail_note.format(len(gate_lines) - kept, "gates and every example")
    if not rows:
        return out + "\n### Regressed examples\n\nNone: no item the candidate fails was passed by base or champion.\n"
    out += (f"\n### Top regressed examples ({min(len(rows), MAX_EXAMPLES)} of {len(rows)})\n\n"
            "Items the candidate fails that the champion or the base passed, critical failures first.\n\n"
            "| suite | example | passed by | candidate output | why it failed |\n|---|---|---|---|---|\n")
    shown = 0
    for row in rows[:MAX_EXAMPLES]:
        line = _example_line(row) + "\n"
        if len(out) + len(line) + 200 > max_chars:
            break
        out += line
        shown += 1
    if shown < len(rows):
        out += tail_note.format(len(rows) - shown, "regressed examples")
    return out
