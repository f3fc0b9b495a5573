"""A disk cache of model outputs keyed by content: model and adapter fingerprints, the exact
prompt text and the generation settings. SQLite gives atomic, concurrent-safe writes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

from harness.fingerprints import json_sha256
from harness.store import sqlite as sqlite_store

CACHE_FILE = "cache.sqlite"  # in the workspace


def cache_key(**parts: Any) -> str:
    """A stable key over everything that determines an output."""
    return json_sha256(parts)


class ResultCache:
    """Key -> JSON value store. Values are verified on read: a row whose checksum does not
    match is treated as missing, so nothing corrupt is ever reused."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._db = sqlite_store.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL, checksum TEXT NOT NULL)"
        )

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(keys)
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, value, checksum FROM results WHERE key IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
            for key, value, checksum in rows:
                if hashlib.sha256(value.encode()).hexdigest() == checksum:
                    found[key] = json.loads(value)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        rows = []
        for key, value in items.items():
            text = json.dumps(value, ensure_ascii=False)
            rows.append((key, text, hashlib.sha256(text.encode()).hexdigest()))
        with self._db:  # one transaction: all rows or none
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()
