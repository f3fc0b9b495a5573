"""Tasks kept apart: two configs with two task names in one workspace (real SQLite files) never share a
champion, a promotion or a run; a workspace from before tasks migrates to the first task that opens it,
losing nothing; the CLI names the task."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_config
from harness.config.schema import DEFAULT_TASK, task_name_from_folder
from harness.errors import TunegateError
from harness.store.backends import open_history, open_registry
from harness.store.history import History
from harness.store.registry import Registry
from tests.test_registry import make_adapter, promote


def project(root: Path, task: str | None, workspace: Path) -> Path:
    """A config in `root` whose workspace is the shared folder `workspace` (inside root's parent)."""
    root.mkdir(parents=True, exist_ok=True)
    table = f'[task]\nname = "{task}"\ndescription = "the {task} task"\n' if task else ""
    (root / "tunegate.toml").write_text(f'{table}[workspace]\ndir = "{workspace}"\n')
    return root / "tunegate.toml"


def results(run_id: str, task: str | None, candidate: str) -> dict:
    out = {"run_id": run_id, "started_at": f"2026-12-0{run_id[-1]}T00:00:00+00:00",
           "finished_at": "2026-12-08T00:01:00+00:00", "git_commit": None, "config_hash": "h", "data": {},
           "verdict": {"status": "PROMOTED", "line": f"tunegate: PROMOTED {candidate}", "failed_gates": []},
           "complete": True, "candidate": {"id": candidate}, "champion": None, "suites": {}, "gates": [],
           "examples": []}
    return {**out, "task": {"name": task}} if task else out


def opened(toml: Path):
    config = load_config(toml)
    workspace = config.path(config.workspace.dir)
    return config, open_registry(config, workspace), open_history(config, workspace)


def test_two_tasks_in_one_workspace_never_share_a_champion_or_a_run(tmp_path):
    shared = tmp_path / "projects" / "shared-ws"
    extraction, reg_a, hist_a = opened(project(tmp_path / "projects" / "a", "extraction", Path("../shared-ws")))
    triage, reg_b, hist_b = opened(project(tmp_path / "projects" / "b", "triage", Path("../shared-ws")))
    assert extraction.path(extraction.workspace.dir) == triage.path(triage.workspace.dir) == shared.resolve()

    promote(reg_a, tmp_path, "sft-aaa", "20261201-000000-aaa1")
    assert reg_b.champion() is None and reg_b.versions() == [] and reg_b.events() == []
    promote(reg_b, tmp_path, "sft-bbb", "20261202-000000-bbb2")
    promote(reg_b, tmp_path, "sft-aaa", "20261203-000000-bbb3")  # the same adapter, in the other task too
    assert reg_a.champion().adapter_id == "sft-aaa" and reg_a.lineage() == ["sft-aaa"]
    assert reg_b.lineage() == ["sft-bbb", "sft-aaa"]
    old, new = reg_b.rollback("aaa is wrong for triage")
    assert (old.adapter_id, new.adapter_id) == ("sft-aaa", "sft-bbb")
    assert reg_a.champion().adapter_id == "sft-aaa"  # the other task's rollback moved nothing here
    with pytest.raises(TunegateError, match="sft-aaa is the only champion"):
        reg_a.rollback("no")

    for run_id, task, history in (("20261201-000000-aaa1", "extraction", hist_a),
                                  ("20261202-000000-bbb2", "triage", hist_b)):
        path = tmp_path / f"{run_id}.json"
        path.write_text("{}")
        history.record(results(run_id, task, "sft-x"), path)
    assert [r.run_id for r in hist_a.runs()] == ["20261201-000000-aaa1"]
    assert [(r.run_id, r.task) for r in hist_b.runs()] == [("20261202-000000-bbb2", "triage")]
    with pytest.raises(TunegateError, match="belongs to task 'triage', not 'extraction'"):
        hist_a.run("20261202-000000-bbb2")
    # One file each, in the one workspace.
    assert Registry.db_in(shared).is_file() and (shared / "history.sqlite").is_file()

    listed = cli(tmp_path / "projects" / "b", "registry", "list")
    assert listed.returncode == 0 and "task triage" in listed.stdout and "* sft-bbb" in listed.stdout
    assert "sft-aaa" in listed.stdout  # still a version of triage's, no longer its champion
    history = cli(tmp_path / "projects" / "a", "history")
    assert "task extraction" in history.stdout and "20261201-000000-aaa1" in history.stdout
    assert "20261202-000000-bbb2" not in history.stdout
    promoted = cli(tmp_path / "projects" / "a", "promote", "20261202-000000-bbb2", "--reason", "x")
    assert promoted.returncode == 2 and "belongs to task 'triage'" in promoted.stderr


def test_a_config_without_a_task_name_is_the_default_task_wherever_it_lies(tmp_path):
    config = load_config(project(tmp_path / "My Project!", None, Path(".tunegate")))
    assert config.task_name == DEFAULT_TASK == "default"
    assert task_name_from_folder(tmp_path / "My Project!") == "My-Project-"  # what `tunegate init` writes
    assert task_name_from_folder(Path("/.hidden")) == "hidden"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tunegate.toml").write_text('[task]\nname = "two words"\n')
    with pytest.raises(TunegateError, match="task.name"):
        load_config(bad / "tunegate.toml")


OLD_REGISTRY = """
CREATE TABLE versions (adapter_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, path TEXT NOT NULL,
    run_id TEXT NOT NULL, created_at TEXT NOT NULL, base_fingerprint TEXT NOT NULL, config_hash TEXT NOT NULL,
    data TEXT NOT NULL, metrics TEXT NOT NULL, gates TEXT NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, action TEXT NOT NULL,
    adapter_id TEXT NOT NULL, run_id TEXT, reason TEXT NOT NULL);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO versions VALUES ('sft-old', 'fp', 'artifacts/sft-old', 'r0', '2026-01-01T00:00:00+00:00', 'b', 'h',
    '{}', '{}', '[]');
INSERT INTO versions VALUES ('sft-older', 'fp', 'artifacts/sft-older', 'r-1', '2025-01-01T00:00:00+00:00', 'b', 'h',
    '{}', '{}', '[]');
INSERT INTO events (at, action, adapter_id, run_id, reason) VALUES ('2025-01-01', 'promote', 'sft-older', 'r-1', 'ok');
INSERT INTO events (at, action, adapter_id, run_id, reason) VALUES ('2026-01-01', 'promote', 'sft-old', 'r0', 'ok');
INSERT INTO state VALUES ('champion', 'sft-old');
"""

OLD_HISTORY = """
CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, git_commit TEXT,
    config_hash TEXT NOT NULL, data TEXT NOT NULL, status TEXT NOT NULL, failed_gates TEXT NOT NULL,
    complete INTEGER NOT NULL, candidate_id TEXT, champion_id TEXT, metrics TEXT NOT NULL, gates TEXT NOT NULL,
    results_path TEXT NOT NULL);
INSERT INTO runs VALUES ('20260101-000000-0001', '2026-01-01', '2026-01-01', NULL, 'h', '{}', 'PROMOTED', '[]', 1,
    'sft-old', NULL, '{}', '[]', '/nowhere/results.json');
"""


def test_a_workspace_from_before_tasks_becomes_the_first_tasks_and_loses_nothing(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "registry").mkdir(parents=True)
    for sql, path in ((OLD_REGISTRY, Registry.db_in(workspace)), (OLD_HISTORY, workspace / "history.sqlite")):
        db = sqlite3.connect(path)
        db.executescript(sql)
        db.close()

    reg = Registry.in_workspace(workspace, "support")
    assert reg.champion().adapter_id == "sft-old" and reg.lineage() == ["sft-older", "sft-old"]
    assert [v.adapter_id for v in reg.versions()] == ["sft-older", "sft-old"]
    history = History.in_workspace(workspace, "support")
    assert [(r.run_id, r.task) for r in history.runs()] == [("20260101-000000-0001", "support")]
    # A second task, opened after the migration, starts empty; the first keeps everything, reopened.
    assert Registry.in_workspace(workspace, "other").champion() is None
    assert History.in_workspace(workspace, "other").runs() == []
    again = Registry.in_workspace(workspace, "support")
    assert again.champion().adapter_id == "sft-old" and len(again.events()) == 2
    promote(again, tmp_path, "sft-new", "r1")
    assert again.rollback("undo")[1].adapter_id == "sft-old"
    assert History.in_workspace(workspace, "support").run("20260101-000000-0001").candidate_id == "sft-old"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_the_same_adapter_id_promoted_in_two_tasks_keeps_one_artifact(tmp_path):
    a, b = Registry(tmp_path / "registry", "a"), Registry(tmp_path / "registry", "b")
    src = make_adapter(tmp_path, "sft-same")
    for reg in (a, b):
        reg.promote(adapter_id="sft-same", fingerprint="fp", source=src, run_id="r", base_fingerprint="b",
                    config_hash="h", data={}, metrics={"task": reg.task}, gates=[], reason="ok")
    assert a.champion().metrics == {"task": "a"} and b.champion().metrics == {"task": "b"}
    assert [p.name for p in (tmp_path / "registry" / "artifacts").iterdir()] == ["sft-same"]
    assert json.loads((src / "adapter_config.json").read_text()) == {"r": 4}


def finished_run(toml: Path):
    """What `pytest suites/` does for a golden-only project, in this process: check, train (or reuse),
    evaluate, gate, finish (promote, record, report)."""
    from harness.run.run import Run
    from harness.suites import BUILTIN

    run = Run(toml)
    run.validate_inputs()
    run.adapter()
    for gate in BUILTIN["golden"].gates:
        run.evaluator.gate("golden", gate)
    run.finish(0, complete=True)
    return run


def test_two_real_projects_of_two_tasks_in_one_workspace_each_promote_their_own(tmp_path, tiny_model_dir,
                                                                                 repo_root):
    """Two projects share one workspace (the adapter store too: the second reuses the first's adapter). The
    second task has no champion of its own, so its run is judged against base only and promotes for itself."""
    from types import SimpleNamespace

    from tests.test_e2e_suites import GOLDEN_ONLY, make_project

    tomls = []
    for task in ("alpha", "beta"):
        root = make_project(SimpleNamespace(path=tmp_path / task), tiny_model_dir, repo_root,
                            extra_config=GOLDEN_ONLY + f'[workspace]\ndir = "../shared"\n[task]\nname = "{task}"\n')
        tomls.append(root / "tunegate.toml")
    a = finished_run(tomls[0])
    b = finished_run(tomls[1])
    assert a.results["verdict"]["status"] == b.results["verdict"]["status"] == "PROMOTED"
    assert b.results["champion"] is None and not b.results["candidate"]["trained_now"]  # alpha's is not beta's
    assert (a.results["task"]["name"], b.results["task"]["name"]) == ("alpha", "beta")
    for toml, task, run in ((tomls[0], "alpha", a), (tomls[1], "beta", b)):
        _, registry, history = opened(toml)
        assert registry.task == task and registry.lineage() == [run.results["candidate"]["id"]]
        assert [r.run_id for r in history.runs()] == [run.run_id]
    assert (tmp_path / "shared" / "registry" / "registry.sqlite").is_file()
    assert not (tmp_path / "alpha" / ".tunegate").exists() and not (tmp_path / "beta" / ".tunegate").exists()
