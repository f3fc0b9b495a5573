"""End-to-end: three real runs of the tiny project (promoted, promoted, blocked with a new adapter),
then their reports, the history store and the `tunegate` commands on what those runs left."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.store.history import History
from harness.store.registry import Registry
from tests.test_e2e_suites import NEVER, TRAIN, golden_rows, make_project, write_jsonl


def run_suites(root: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q"], cwd=root,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model_dir, repo_root) -> SimpleNamespace:
    """Runs 1 and 2 promote adapter A; run 3 trains adapter B on other data and is blocked by the golden bar."""
    root = tmp_path_factory.mktemp("three-runs")
    make_project(SimpleNamespace(path=root), tiny_model_dir, repo_root)
    with (root / "tunegate.toml").open("a") as f:  # named: a copy of the project in another folder is the same task
        f.write('[task]\nname = "three-runs"\n')
    step_summary = root / "step-summary.md"
    outs = [run_suites(root, {"GITHUB_STEP_SUMMARY": str(step_summary)}) for _ in range(2)]
    write_jsonl(root / "data" / "train.jsonl", [
        {**t, "messages": [t["messages"][0], {"role": "assistant", "content": '{"category": "account"}'}]} for t in TRAIN])
    write_jsonl(root / "data" / "golden.jsonl", golden_rows(NEVER))
    toml = root / "tunegate.toml"
    toml.write_text(toml.read_text().replace("min_pass_rate = 0.0", "min_pass_rate = 0.5"))
    outs.append(run_suites(root, {"GITHUB_STEP_SUMMARY": str(step_summary)}))
    assert [o.returncode for o in outs] == [0, 0, 1], "\n".join(o.stdout[-2000:] + o.stderr[-2000:] for o in outs)
    history = History.in_workspace(root / ".tunegate", "three-runs")
    runs = history.runs()
    history.close()
    return SimpleNamespace(root=root, runs=runs, outs=outs, step_summary=step_summary)


def test_every_run_is_recorded_and_reported_promoted_or_not(workspace):
    runs = workspace.runs
    assert [r.status for r in runs] == ["PROMOTED", "PROMOTED", "BLOCKED"]
    assert runs[0].candidate_id == runs[1].candidate_id != runs[2].candidate_id
    assert runs[2].champion_id == runs[0].candidate_id and runs[2].failed_gates == ["golden.pass_rate"]
    assert all(r.config_hash and r.data.get("train") and r.gates and r.metrics for r in runs)
    assert runs[0].git_commit is None or len(runs[0].git_commit) == 40
    reports = workspace.root / "reports"
    for r in runs:
        assert (reports / r.run_id / "index.html").stat().st_size > 10_000
        assert (reports / r.run_id / "summary.md").read_text().startswith(f"## tunegate: {r.status}")
    assert (reports / "latest" / "index.html").read_text() == (reports / runs[2].run_id / "index.html").read_text()
    assert "tunegate: report in" in workspace.outs[2].stdout
    # three summaries appended to the CI step summary, none replaced
    assert workspace.step_summary.read_text().count("## tunegate:") == 3


def test_report_has_trends_of_all_three_runs_and_all_roles(workspace):
    page = (workspace.root / "reports" / "latest" / "index.html").read_text()
    assert "3 run(s) in the history store" in page
    assert "golden: gate values, last 3 runs" in page
    assert page.count("<svg") >= 4  # suites, loss, region slices, trend
    assert "training loss" in page
    for run in workspace.runs:
        assert run.run_id[4:15] in page  # each run is a tick on the trend axis


def test_history_prints_one_row_per_run(workspace):
    out = cli(workspace.root, "history")
    assert out.returncode == 0, out.stderr
    task, *lines = out.stdout.strip().splitlines()
    assert task == "task three-runs" and lines[0].startswith("run") and len(lines) == 4
    assert [ln.split()[3] for ln in lines[1:]] == ["PROMOTED", "PROMOTED", "BLOCKED"]


def test_compare_lists_examples_that_changed(workspace):
    a, _, c = workspace.runs
    out = cli(workspace.root, "compare", a.run_id, c.run_id)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"candidate outputs, {a.run_id} -> {c.run_id}:")
    # run 3's golden rubric can never pass: every example run 1 passed now fails
    assert "5 now fail" in first and "now fail:" in out.stdout and "g-0" in out.stdout
    assert "gate golden.pass_rate" in out.stdout


def test_report_command_rerenders_a_past_run(workspace):
    first = workspace.runs[0]
    page = workspace.root / "reports" / first.run_id / "index.html"
    page.unlink()
    out = cli(workspace.root, "report", first.run_id)
    assert out.returncode == 0, out.stderr
    assert "1 run(s) in the history store" in page.read_text()  # trends as of that run, not later ones


@pytest.mark.parametrize("args, message", [
    (["report", "20990101-000000-dead"], "unknown run id '20990101-000000-dead'"),
    (["compare", "nope", "nope2"], "unknown run id 'nope'"),
    (["promote", "20990101-000000-dead", "--reason", "x"], "unknown run id"),
    (["promote", "RUN2", "--reason", "  "], "--reason is empty"),
    (["review", "export", "--out", "grades.txt"], "unknown format; name the file .csv or .jsonl"),
])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(workspace, args, message):
    args = [a.replace("RUN2", workspace.runs[1].run_id) for a in args]
    db = workspace.root / ".tunegate" / "registry" / "registry.sqlite"
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone()
    out = cli(workspace.root, *args)
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM events").fetchone() == before


def test_manual_promote_then_rollback_keep_the_registry_consistent(workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(workspace.root, root, symlinks=True)
    a, _, blocked = workspace.runs
    out = cli(root, "promote", a.run_id, "--reason", "x")
    assert out.returncode == 2 and "is already the champion" in out.stderr

    out = cli(root, "promote", blocked.run_id, "--reason", "false alarm: the golden rubric was wrong")
    assert out.returncode == 0, out.stderr
    assert "its verdict was BLOCKED" in out.stdout
    reg = Registry(root / ".tunegate" / "registry", "three-runs")
    assert reg.champion().adapter_id == blocked.candidate_id
    assert (reg.champion().path / "adapter_model.safetensors").is_file()
    assert reg.lineage() == [a.candidate_id, blocked.candidate_id]

    out = cli(root, "rollback", "--reason", "users report worse answers")
    assert out.returncode == 0, out.stderr
    reg = Registry(root / ".tunegate" / "registry", "three-runs")
    assert reg.champion().adapter_id == a.candidate_id and reg.lineage() == [a.candidate_id]
    assert {v.adapter_id for v in reg.versions()} == {a.candidate_id, blocked.candidate_id}
    assert all(v.path.is_dir() for v in reg.versions())
    events = reg.events()
    assert [e["action"] for e in events] == ["promote", "promote", "manual-promote", "rollback"]
    assert events[2]["reason"] == "false alarm: the golden rubric was wrong" and events[2]["run_id"] == blocked.run_id
    assert events[3]["reason"].startswith("users report worse answers")

    out = cli(root, "rollback", "--reason", "once more")
    assert out.returncode == 2 and "is the only champion" in out.stderr
    assert len(Registry(root / ".tunegate" / "registry", "three-runs").events()) == 4
    log = cli(root, "registry", "log")
    assert log.returncode == 0 and "manual-promote" in log.stdout and "rollback" in log.stdout


def test_review_export_grade_import_shows_agreement_in_report(workspace, tmp_path):
    run = workspace.runs[1]
    out_file = tmp_path / "to-grade.csv"
    out = cli(workspace.root, "review", "export", run.run_id, "--out", str(out_file), "--n", "4")
    assert out.returncode == 0, out.stderr
    import csv

    rows = list(csv.DictReader(out_file.open(newline="")))
    assert len(rows) == 4 and all(r["rubric"].startswith("[") for r in rows)  # the golden rubric, as written
    auto = {(r["suite"], r["example_id"]): r["passed"] for r in run.results()["examples"] if r["role"] == "candidate"}
    for i, r in enumerate(rows):  # a grader who agrees with the automated verdict on 3 of 4
        agree = auto[(r["suite"], r["example_id"])]
        r["grade"] = "pass" if (agree if i else not agree) else "fail"
    with out_file.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = cli(workspace.root, "review", "import", str(out_file), "--grader", "ana")
    assert out.returncode == 0, out.stderr
    assert "imported 4 grades" in out.stdout and "agreement  75.0%" in out.stdout
    page = (workspace.root / "reports" / run.run_id / "index.html").read_text()
    assert "Human review" in page and "75.0%" in page


def test_real_report_in_a_browser_shows_verdict_gates_and_filters(workspace, tmp_path):
    import re

    from tests import browser

    page = workspace.root / "reports" / workspace.runs[2].run_id / "index.html"
    dom = browser.dump_dom(page, "#show:failed=1")
    assert re.search(r'<span id="verdict" class="verdict BLOCKED">BLOCKED</span>', dom)
    assert "tunegate: BLOCKED: golden.pass_rate" in dom
    gates = dom.split('<section id="gates">')[1].split("</section>")[0]
    assert re.search(r"<code>golden\.pass_rate</code></td><td class=\"FAILED\">FAILED</td>", gates)
    assert "golden.noninferior_champion" in gates and "golden.critical" in gates
    assert '<span id="shown">5</span> of 5 items shown' in dom  # every golden example fails in run 3
    dark, spread = browser.ink(browser.screenshot(page, tmp_path / "real.png"))
    assert dark > 0.01 and spread > 10  # a blank page has neither
