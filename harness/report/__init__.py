"""Run reports: reports/<run-id>/index.html (self-contained) and summary.md (PR-comment sized).

`write_reports` is called by RunSession.finish after results.json, and by `tunegate report` to
re-render a past run from its results.json and the history store.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness import atomic, redaction
from harness.report import html, summary
from harness.report.review import agreement
from harness.store.history import History

HTML_FILE = "index.html"
SUMMARY_FILE = "summary.md"
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True)
class Written:
    html: Path
    summary: Path


def write_reports(results: dict, run_dir: Path, history: History) -> Written:
    """Render both files atomically into `run_dir`; append the summary to $GITHUB_STEP_SUMMARY when set.
    Secrets are redacted from the results before rendering (HTML escaping could hide one from a search of
    the page) and from the rendered text too (the history's older runs and grade notes feed the page)."""
    run_dir = Path(run_dir)
    results = redaction.redact_data(results)
    runs = [r for r in history.runs() if r.started_at <= results["started_at"]]
    page = redaction.redact(html.render(results, runs, agreement(results, history.grades(results["run_id"]))))
    atomic.write_text(run_dir / HTML_FILE, page)
    text = redaction.redact(summary.render(results, report_link=f"{run_dir.parent.name}/{run_dir.name}/{HTML_FILE}"))
    atomic.write_text(run_dir / SUMMARY_FILE, text)
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary:
        # GitHub's own file, appended to (never replaced): earlier steps may have written to it.
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return Written(run_dir / HTML_FILE, run_dir / SUMMARY_FILE)
