"""The local adapter registry: SQLite for versions and events, a folder of adapter artifacts
(`harness.store.backends.open_registry` picks it or the shared MLflow one, registry_mlflow.py, from the config).

Promotion copies the adapter into `artifacts/<adapter-id>` (atomic rename) before one SQLite
transaction records the version, the event and the new champion, so a promotion is either
complete or absent: an interrupted one leaves at most an unreferenced artifact folder.

Each task (`[task] name`) has its own versions, events and champion in the one file: two tasks
sharing a workspace never share a champion. Adapter artifacts are shared, by id (their content).

Every change of champion is an event with its time and reason: `promote` (all gates passed),
`manual-promote` (a person's decision after review) and `rollback`. The champion lineage is the
replay of those events, so a rollback undoes the latest promotion and a second one the one before.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import atomic
from harness.errors import TunegateError
from harness.store import sqlite as sqlite_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    task TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    path TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    base_fingerprint TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    metrics TEXT NOT NULL,
    gates TEXT NOT NULL,
    PRIMARY KEY (task, adapter_id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    run_id TEXT,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# A registry from before tasks: its versions and events become the task of the first config that opens
# it (the one project that used the workspace then), in one transaction with the schema change.
LEGACY_MIGRATION = """
CREATE TABLE versions_by_task (
    task TEXT NOT NULL, adapter_id TEXT NOT NULL, fingerprint TEXT NOT NULL, path TEXT NOT NULL,
    run_id TEXT NOT NULL, created_at TEXT NOT NULL, base_fingerprint TEXT NOT NULL, config_hash TEXT NOT NULL,
    data TEXT NOT NULL, metrics TEXT NOT NULL, gates TEXT NOT NULL, PRIMARY KEY (task, adapter_id)
);
INSERT INTO versions_by_task SELECT :task, * FROM versions;
DROP TABLE versions;
ALTER TABLE versions_by_task RENAME TO versions;
ALTER TABLE events ADD COLUMN task TEXT NOT NULL DEFAULT '';
UPDATE events SET task = :task;
UPDATE state SET key = 'champion:' || :task WHERE key = 'champion';
"""
FOLDER = "registry"  # under the workspace
DB_FILE = "registry.sqlite"
DEFAULT_TASK = "default"  # a Registry opened without a task (tests, tools); runs pass the config's task
PROMOTIONS = ("promote", "manual-promote")
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Version:
    adapter_id: str
    fingerprint: str
    path: Path
    run_id: str
    created_at: str
    base_fingerprint: str
    config_hash: str
    data: dict
    metrics: dict
    gates: list


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def replay(events: list[dict]) -> list[str]:
    """The champions in order, oldest first: a promotion pushes its adapter (unless it is already the
    champion), a rollback pops the current one."""
    stack: list[str] = []
    for event in events:
        if event["action"] in PROMOTIONS and (not stack or stack[-1] != event["adapter_id"]):
            stack.append(event["adapter_id"])
        elif event["action"] == ROLLBACK and stack:
            stack.pop()
    return stack


def nothing_to_roll_back(stack: list[str]) -> TunegateError:
    current = stack[-1] if stack else None
    return TunegateError("nothing to roll back to: " + (f"{current} is the only champion there has been"
                                                        if current else "no adapter has been promoted yet"))


class Registry:
    """One task's registry: its versions, events and champion. Other tasks' rows share the file, never a row."""

    def __init__(self, root: Path, task: str = DEFAULT_TASK):
        self.root = Path(root)
        self.task = task
        self.artifacts = self.root / "artifacts"
        self._db = sqlite_store.connect(self.root / DB_FILE)
        self._migrate()

    def _migrate(self) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")  # two processes opening an old registry migrate it once
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(versions)")]
            if columns and "task" not in columns:
                for statement in LEGACY_MIGRATION.split(";"):
                    if statement.strip():
                        self._db.execute(statement, {"task": self.task} if ":task" in statement else {})
            else:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)

    @classmethod
    def in_workspace(cls, workspace: Path, task: str = DEFAULT_TASK) -> "Registry":
        return cls(Path(workspace) / FOLDER, task)

    @staticmethod
    def db_in(workspace: Path) -> Path:
        return Path(workspace) / FOLDER / DB_FILE

    @classmethod
    def exists_in(cls, workspace: Path) -> bool:
        """Whether the workspace has a registry yet (opening one creates it)."""
        return cls.db_in(workspace).is_file()

    @property
    def _champion_key(self) -> str:
        return f"champion:{self.task}"

    def _version(self, row: tuple) -> Version:
        _task, aid, fp, path, run_id, created, base_fp, cfg_hash, data, metrics, gates = row
        return Version(aid, fp, self.root / path, run_id, created, base_fp, cfg_hash, json.loads(data),
                       json.loads(metrics), json.loads(gates))

    def versions(self) -> list[Version]:
        rows = self._db.execute("SELECT * FROM versions WHERE task = ? ORDER BY created_at, adapter_id",
                                (self.task,)).fetchall()
        return [self._version(r) for r in rows]

    def champion(self) -> Version | None:
        """The last promoted adapter, or None before the first promotion."""
        row = self._db.execute(
            "SELECT v.* FROM state s JOIN versions v ON v.adapter_id = s.value AND v.task = ? WHERE s.key = ?",
            (self.task, self._champion_key)).fetchone()
        return self._version(row) if row else None

    def events(self) -> list[dict]:
        rows = self._db.execute("SELECT at, action, adapter_id, run_id, reason FROM events WHERE task = ? ORDER BY id",
                                (self.task,)).fetchall()
        return [dict(zip(("at", "action", "adapter_id", "run_id", "reason"), r)) for r in rows]

    def lineage(self) -> list[str]:
        """The champions in order, oldest first, as the events leave them."""
        return replay(self.events())

    def version(self, adapter_id: str) -> Version | None:
        row = self._db.execute("SELECT * FROM versions WHERE task = ? AND adapter_id = ?",
                               (self.task, adapter_id)).fetchone()
        return self._version(row) if row else None

    def promote(self, *, adapter_id: str, fingerprint: str, source: Path, run_id: str, base_fingerprint: str,
                config_hash: str, data: dict, metrics: dict, gates: list, reason: str,
                action: str = "promote") -> Version:
        """Copy the adapter in and make it the champion, all or nothing. `action` is `promote` for a
        run whose gates all passed, `manual-promote` for a person's decision."""
        if action not in PROMOTIONS:
            raise ValueError(f"unknown promotion action {action!r}")
        rel = Path("artifacts") / adapter_id
        final = self.root / rel
        if not final.is_dir():
            with atomic.build_dir(final) as tmp:
                for item in Path(source).iterdir():
                    if item.is_file():
                        shutil.copy2(item, tmp / item.name)
        now = _now()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO versions VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (self.task, adapter_id, fingerprint, str(rel), run_id, now, base_fingerprint, config_hash,
                 json.dumps(data), json.dumps(metrics), json.dumps(gates)),
            )
            self._event(now, action, adapter_id, run_id, reason)
        return self.champion()

    def rollback(self, reason: str) -> tuple[Version, Version]:
        """Make the champion before the current one the champion again; return (old, new).

        Raises TunegateError, changing nothing, when there is no earlier champion to return to."""
        now = _now()
        with self._db:
            # One write transaction: the lineage read and the new state cannot interleave with a promotion.
            self._db.execute("BEGIN IMMEDIATE")
            stack = self.lineage()
            if len(stack) < 2:
                raise nothing_to_roll_back(stack)
            old, new = stack[-1], stack[-2]
            self._event(now, ROLLBACK, new, self.version(new).run_id, reason, replaced=old)
        return self.version(old), self.champion()

    def _event(self, at: str, action: str, adapter_id: str, run_id: str | None, reason: str,
               replaced: str | None = None) -> None:
        """Record one champion change and apply it; the caller holds the write transaction."""
        if replaced:
            reason = f"{reason} (replaces {replaced})"
        self._db.execute("INSERT INTO events (task, at, action, adapter_id, run_id, reason) VALUES (?,?,?,?,?,?)",
                         (self.task, at, action, adapter_id, run_id, reason))
        self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (self._champion_key, adapter_id))

    def close(self) -> None:
        self._db.close()
