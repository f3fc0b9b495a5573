"""The local adapter registry: SQLite for versions and events, a folder of adapter artifacts.

Promotion copies the adapter into `artifacts/<adapter-id>` (atomic rename) before one SQLite
transaction records the version, the event and the new champion, so a promotion is either
complete or absent: an interrupted one leaves at most an unreferenced artifact folder.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import atomic

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


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.root / "registry.sqlite", timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=60000")
        self._db.executescript(SCHEMA)

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

    def promote(self, *, adapter_id: str, fingerprint: str, source: Path, run_id: str, base_fingerprint: str,
                config_hash: str, data: dict, metrics: dict, gates: list, reason: str) -> Version:
        """Copy the adapter in and make it the champion, all or nothing."""
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
            self._db.execute(
                "INSERT INTO events (at, action, adapter_id, run_id, reason) VALUES (?,?,?,?,?)",
                (now, "promote", adapter_id, run_id, reason),
            )
            self._db.execute("INSERT OR REPLACE INTO state VALUES ('champion', ?)", (adapter_id,))
        return self.champion()

    def close(self) -> None:
        self._db.close()
