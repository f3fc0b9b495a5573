"""Two runs at once on one workspace, as two CI jobs would do: both finish, the adapter is trained once,
and the registry, cache, history and reports stay whole."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from harness.atomic import builder_lock
from harness.run.run import Run
from harness.store.results import validate
from tests.test_e2e_suites import make_project
from training.store import adapter_folder, adapter_key

pytest_plugins = ["pytester"]

WAITING = "another run is building this adapter"


def integrity(db) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def start(root, n: int) -> tuple[subprocess.Popen, Path]:
    log = root / f"run{n}.log"
    with open(log, "w") as out:
        run = subprocess.Popen([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q",
                                f"--basetemp={root / f'tmp{n}'}"], cwd=root, stdout=out, stderr=subprocess.STDOUT)
    return run, log


def test_two_runs_at_once_train_once_and_corrupt_nothing(pytester, tiny_model_dir, repo_root):
    root = make_project(pytester, tiny_model_dir, repo_root)
    session = Run(root / "tunegate.toml")
    train, val = session.inputs.splits
    key = adapter_key(session.base, train, val, session.config.training, session.config.data.system_prompt)
    lock = builder_lock(adapter_folder(session.workspace / "adapters", key))
    # The test holds the adapter's lock while both runs start, as a third run training it would: both must
    # wait. Once it lets go, one of them trains and the other waits again, then reuses that adapter.
    with lock:
        runs = [start(root, n) for n in range(2)]
        deadline = time.monotonic() + 300
        while not all(WAITING in log.read_text() for _, log in runs):
            assert all(p.poll() is None for p, _ in runs) and time.monotonic() < deadline, \
                [log.read_text() for _, log in runs]
            time.sleep(0.1)
    for p, log in runs:
        assert p.wait(timeout=600) == 0, log.read_text()
        assert log.read_text().splitlines()[-1].startswith("tunegate: PROMOTED sft-"), log.read_text()

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
