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
        raise damaged(path, e) from None
    db.execute("PRAGMA busy_timeout=60000")
    return db


def check(path: Path) -> None:
    """Raise TunegateError, in one line, unless the SQLite file at `path` is whole (a quick page check:
    milliseconds for a workspace's stores)."""
    db = connect(path)
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as e:
        verdict = str(e)
    finally:
        db.close()
    if verdict != "ok":
        raise damaged(path, verdict)


def damaged(path: Path, reason: object) -> TunegateError:
    return TunegateError(f"{path}: not a SQLite database, or damaged ({reason}); restore it from a backup, or move it "
                         "aside and tunegate starts a new one")
