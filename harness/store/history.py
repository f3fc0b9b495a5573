"""The history store: one row per finished run, promoted or not, and the human grades of its outputs.
Each row belongs to a task (`[task] name`): a History lists, trends and finds only its own task's runs.

SQLite in the workspace (WAL, busy timeout), next to the registry. A run's row holds what the
trends, `tunegate history` and the summary need: ids, commit, config and data hashes, verdict,
metrics and gate results. Per-example records are not copied here: every run's results.json
already holds all of them, schema-checked, and `compare` and the drill-down read them from there;
copying ~3 roles x every item of every run into SQLite would double the storage for no new query.
`harness.store.backends.open_history` picks this store or the shared MLflow one (history_mlflow.py) from the config.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import redaction
from harness.errors import TunegateError
from harness.store import sqlite as sqlite_store

HISTORY_FILE = "history.sqlite"
DEFAULT_TASK = "default"  # a History opened without a task (tests, tools); runs pass the config's task

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    git_commit TEXT,
    config_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    failed_gates TEXT NOT NULL,
    complete INTEGER NOT NULL,
    candidate_id TEXT,
    champion_id TEXT,
    metrics TEXT NOT NULL,
    gates TEXT NOT NULL,
    results_path TEXT NOT NULL,
    task TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grades (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    suite TEXT NOT NULL,
    example_id TEXT NOT NULL,
    role TEXT NOT NULL,
    grader TEXT NOT NULL,
    passed INTEGER NOT NULL,
    note TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (run_id, suite, example_id, role, grader)
);
"""
# Named, not `*`: a store migrated from before tasks has the task column last, a new one too, but say so.
COLUMNS = ("run_id, started_at, finished_at, git_commit, config_hash, data, status, failed_gates, complete, "
           "candidate_id, champion_id, metrics, gates, results_path, task")


@dataclass(frozen=True)
class Run:
    """One finished run as the history store keeps it."""

    run_id: str
    started_at: str
    finished_at: str
    git_commit: str | None
    config_hash: str
    data: dict
    status: str
    failed_gates: list
    complete: bool
    candidate_id: str | None
    champion_id: str | None
    metrics: dict
    gates: list
    results_path: Path
    task: str = DEFAULT_TASK

    def results(self) -> dict:
        """The run's full results.json (every example record)."""
        try:
            return json.loads(self.results_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TunegateError(f"run {self.run_id}: {self.results_path} is gone; its examples cannot be read") from None

    def gate_values(self) -> dict[str, float | None]:
        return {g["name"]: g["value"] for g in self.gates}


@dataclass(frozen=True)
class Grade:
    """A person's pass/fail on one output of one run."""

    run_id: str
    suite: str
    example_id: str
    role: str
    grader: str
    passed: bool
    note: str = ""


def summarise(results: dict) -> dict:
    """What the history keeps of a run: its results without the examples, secrets redacted (as data,
    before json.dumps escapes anything)."""
    return redaction.redact_data({k: v for k, v in results.items() if k != "examples"})


def task_of(results: dict, default: str = DEFAULT_TASK) -> str:
    """The task a run's results (or summary) belong to; `default` for results from before tasks."""
    return (results.get("task") or {}).get("name") or default


def run_from_summary(summary: dict, results_path: Path, cls: type[Run] = Run, default_task: str = DEFAULT_TASK,
                     **extra) -> Run:
    """The Run a summary (from `summarise`) describes."""
    v = summary["verdict"]
    return cls(summary["run_id"], summary["started_at"], summary["finished_at"], summary.get("git_commit"),
               summary["config_hash"], summary["data"], v["status"], v["failed_gates"], bool(summary["complete"]),
               (summary.get("candidate") or {}).get("id"), (summary.get("champion") or {}).get("id"),
               summary["suites"], summary["gates"], Path(results_path), task_of(summary, default_task), **extra)


def not_this_task(run_id: str, task: str, mine: str) -> TunegateError:
    return TunegateError(f"run {run_id} belongs to task {task!r}, not {mine!r}; pass the config of task {task!r} "
                         "(--config), or set [task] name")


class History:
    """One task's runs. Other tasks' runs share the file: they are neither listed nor trended here."""

    def __init__(self, path: Path, task: str = DEFAULT_TASK):
        self.path = Path(path)
        self.task = task
        self._db = sqlite_store.connect(self.path)
        self._migrate()

    def _migrate(self) -> None:
        """Create the tables; a store from before tasks gets the column, its runs this task (the one
        project that used the workspace then), in one transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(runs)")]
            if columns and "task" not in columns:
                self._db.execute("ALTER TABLE runs ADD COLUMN task TEXT NOT NULL DEFAULT ''")
                self._db.execute("UPDATE runs SET task = ?", (self.task,))
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    @classmethod
    def in_workspace(cls, workspace: Path, task: str = DEFAULT_TASK) -> "History":
        return cls(Path(workspace) / HISTORY_FILE, task)

    def record(self, results: dict, results_path: Path) -> None:
        """Store (or replace) the row of a finished run from its results (secrets redacted)."""
        results = summarise(results)
        v = results["verdict"]
        row = (
            results["run_id"], results["started_at"], results["finished_at"], results.get("git_commit"),
            results["config_hash"], json.dumps(results["data"]), v["status"], json.dumps(v["failed_gates"]),
            int(results["complete"]), (results.get("candidate") or {}).get("id"),
            (results.get("champion") or {}).get("id"), json.dumps(results["suites"]), json.dumps(results["gates"]),
            str(Path(results_path).resolve()), self.task,
        )
        self._db.execute(f"INSERT OR REPLACE INTO runs ({COLUMNS}) VALUES ({','.join('?' * len(row))})", row)

    def _run(self, row: tuple) -> Run:
        (run_id, started, finished, commit, cfg, data, status, failed, complete, cand, champ, metrics, gates,
         path, task) = row
        return Run(run_id, started, finished, commit, cfg, json.loads(data), status, json.loads(failed),
                   bool(complete), cand, champ, json.loads(metrics), json.loads(gates), Path(path), task)

    def runs(self, limit: int | None = None) -> list[Run]:
        """Runs oldest first; with `limit`, the newest `limit` of them."""
        rows = self._db.execute(f"SELECT {COLUMNS} FROM runs WHERE task = ? ORDER BY started_at DESC, run_id DESC "
                                "LIMIT ?", (self.task, -1 if limit is None else limit)).fetchall()
        return [self._run(r) for r in reversed(rows)]

    def run(self, run_id: str) -> Run:
        """One run of this task by id; an unknown id, or another task's run, is a TunegateError naming the
        closest known one, or the task it belongs to."""
        row = self._db.execute(f"SELECT {COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None and row[-1] != self.task:
            raise not_this_task(run_id, row[-1], self.task)
        if row is None:
            known = [r[0] for r in self._db.execute("SELECT run_id FROM runs WHERE task = ?", (self.task,)).fetchall()]
            near = difflib.get_close_matches(run_id, known, n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]}?" if near else "; `tunegate history` lists the runs"
            raise TunegateError(f"unknown run id {run_id!r}{hint}")
        return self._run(row)

    def latest(self) -> Run:
        runs = self.runs(limit=1)
        if not runs:
            raise TunegateError(f"{self.path}: no runs recorded yet; run `pytest suites/` first")
        return runs[0]

    def add_grades(self, grades: list[Grade], source: str) -> None:
        """Store grades in one transaction (a grader's new grade of the same output replaces the old)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO grades VALUES (?,?,?,?,?,?,?,?,?)",
                [(g.run_id, g.suite, g.example_id, g.role, g.grader, int(g.passed), g.note, source, now)
                 for g in grades],
            )

    def grades(self, run_id: str) -> list[Grade]:
        rows = self._db.execute(
            "SELECT run_id, suite, example_id, role, grader, passed, note FROM grades WHERE run_id = ? "
            "ORDER BY suite, example_id, role, grader", (run_id,)).fetchall()
        return [Grade(*r[:5], bool(r[5]), r[6]) for r in rows]

    def close(self) -> None:
        self._db.close()
