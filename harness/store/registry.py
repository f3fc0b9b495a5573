"""The local adapter registry: SQLite for versions and events, a folder of adapter artifacts
(`harness.store.backends.open_registry` picks it or the shared MLflow one, registry_mlflow.py, from the config).

Promotion copies the adapter into `artifacts/<adapter-id>` (atomic rename) before one SQLite
transaction records the version, the event and the new champion, so a promotion is either
complete or absent: an interrupted one leaves at most an unreferenced artifact folder.

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
    adapter_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    path TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    base_fingerprint TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    data TEXT NOT NULL,
    metrics TEXT NOT NULL,
    gates TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    adapter_id TEXT NOT NULL,
    run_id TEXT,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
FOLDER = "registry"  # under the workspace
DB_FILE = "registry.sqlite"
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
    def __init__(self, root: Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self._db = sqlite_store.connect(self.root / DB_FILE)
        self._db.executescript(SCHEMA)

    @classmethod
    def in_workspace(cls, workspace: Path) -> "Registry":
        return cls(Path(workspace) / FOLDER)

    @staticmethod
    def db_in(workspace: Path) -> Path:
        return Path(workspace) / FOLDER / DB_FILE

    @classmethod
    def exists_in(cls, workspace: Path) -> bool:
        """Whether the workspace has a registry yet (opening one creates it)."""
        return cls.db_in(workspace).is_file()

    def _version(self, row: tuple) -> Version:
        aid, fp, path, run_id, created, base_fp, cfg_hash, data, metrics, gates = row
        return Version(aid, fp, self.root / path, run_id, created, base_fp, cfg_hash, json.loads(data),
                       json.loads(metrics), json.loads(gates))

    def versions(self) -> list[Version]:
        rows = self._db.execute("SELECT * FROM versions ORDER BY created_at, adapter_id").fetchall()
        return [self._version(r) for r in rows]

    def champion(self) -> Version | None:
        """The last promoted adapter, or None before the first promotion."""
        row = self._db.execute(
            "SELECT v.* FROM state s JOIN versions v ON v.adapter_id = s.value WHERE s.key = 'champion'"
        ).fetchone()
        return self._version(row) if row else None

    def events(self) -> list[dict]:
        rows = self._db.execute("SELECT at, action, adapter_id, run_id, reason FROM events ORDER BY id").fetchall()
        return [dict(zip(("at", "action", "adapter_id", "run_id", "reason"), r)) for r in rows]

    def lineage(self) -> list[str]:
        """The champions in order, oldest first, as the events leave them."""
        return replay(self.events())

    def version(self, adapter_id: str) -> Version | None:
        row = self._db.execute("SELECT * FROM versions WHERE adapter_id = ?", (adapter_id,)).fetchone()
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
                "INSERT OR IGNORE INTO versions VALUES (?,?,?,?,?,?,?,?,?,?)",
                (adapter_id, fingerprint, str(rel), run_id, now, base_fingerprint, config_hash,
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
        self._db.execute("INSERT INTO events (at, action, adapter_id, run_id, reason) VALUES (?,?,?,?,?)",
                         (at, action, adapter_id, run_id, reason))
        self._db.execute("INSERT OR REPLACE INTO state VALUES ('champion', ?)", (adapter_id,))

    def close(self) -> None:
        self._db.close()
