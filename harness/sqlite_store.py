"""Opening the workspace's SQLite stores (cache, registry, history) the same safe way."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from harness.errors import TunegateError


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL and a 60 s busy timeout, so concurrent runs on one
    workspace wait for each other instead of failing or corrupting the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as e:
        db.close()
        raise TunegateError(f"{path}: not a SQLite database, or damaged ({e}); restore it from a backup, or move it "
                            "aside and tunegate starts a new one") from None
    db.execute("PRAGMA busy_timeout=60000")
    return db
