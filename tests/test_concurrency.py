"""Two runs at once on one workspace, as two CI jobs would do: both finish, the adapter is trained once,
and the registry, cache, history and reports stay whole."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from harness.results import validate
from tests.test_e2e_suites import make_project

pytest_plugins = ["pytester"]


def integrity(db) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_two_runs_at_once_train_once_and_corrupt_nothing(pytester, tiny_model_dir, repo_root):
    root = make_project(pytester, tiny_model_dir, repo_root)
    runs = [subprocess.Popen([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q",
                              f"--basetemp={root / f'tmp{n}'}"], cwd=root, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for n in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in runs]
    for p, out in zip(runs, outputs):
        assert p.returncode == 0, out
        assert out.splitlines()[-1].startswith("tunegate: PROMOTED sft-"), out

    runs_dirs = [d for d in (root / "reports").iterdir() if not d.is_symlink()]  # not reports/latest
    results = [json.loads((d / "results.json").read_text()) for d in sorted(runs_dirs)]
    assert len(results) == 2
    for r in results:
        validate(r)
    assert sorted(r["candidate"]["trained_now"] for r in results) == [False, True]  # trained once, then reused
    assert len({r["candidate"]["fingerprint"] for r in results}) == 1
    assert results[0]["suites"] == results[1]["suites"]
    for r in results:
        html = (root / "reports" / r["run_id"] / "index.html").read_text()
        assert html.rstrip().endswith("</html>")

    ws = root / ".tunegate"
    for db in (ws / "registry" / "registry.sqlite", ws / "cache.sqlite", ws / "history.sqlite"):
        assert integrity(db) == "ok", db
    with sqlite3.connect(ws / "registry" / "registry.sqlite") as reg:
        assert reg.execute("SELECT adapter_id FROM versions").fetchall() == [(results[0]["candidate"]["id"],)]
        assert [a for (a,) in reg.execute("SELECT action FROM events")] == ["promote", "promote"]
    with sqlite3.connect(ws / "history.sqlite") as hist:
        assert hist.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    adapters = [p.name for p in (ws / "adapters").iterdir() if p.suffix != ".lock"]
    assert len(adapters) == 1 and not adapters[0].startswith(".")  # no unfinished build left behind
