"""What a project's workspace and reports hold, for tests that must show nothing was lost or left corrupt."""
from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from pathlib import Path

from harness.fingerprints import adapter_intact
from harness.store.results import validate


def rows(db: Path, query: str) -> list[tuple]:
    # Closed here, not by the garbage collector: closing the last connection removes the -wal and -shm
    # files, and a collection during a later copy of the project would make them vanish mid-copy.
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(query).fetchall()


def stored(project: Path) -> dict[str, str]:
    """Everything the workspace and reports hold, as name -> digest: files by content, SQLite rows by value."""
    out = {}
    for base in (project / ".tunegate", project / "reports"):
        for path in base.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.suffix not in (".sqlite", ".lock") \
                    and not path.name.endswith(("-wal", "-shm")):
                out[str(path.relative_to(project))] = hashlib.sha256(path.read_bytes()).hexdigest()
    ws = project / ".tunegate"
    for db, query in ((ws / "cache.sqlite", "SELECT key, value FROM results"),
                      (ws / "registry" / "registry.sqlite", "SELECT adapter_id, fingerprint, path FROM versions"),
                      (ws / "registry" / "registry.sqlite", "SELECT id, action, adapter_id, run_id FROM events"),
                      (ws / "history.sqlite", "SELECT run_id, status FROM runs")):
        if not db.is_file():
            continue
        try:
            found = rows(db, query)
        except sqlite3.DatabaseError:  # not a database (a bad-input case): its bytes must stay as they are
            out[f"{db.name}:bytes"] = hashlib.sha256(db.read_bytes()).hexdigest()
            continue
        for row in found:
            out[f"{db.name}:{row[0]}"] = hashlib.sha256(json.dumps(row).encode()).hexdigest()
    return out


def lost(before: dict[str, str], project: Path) -> list[str]:
    """What was stored before the run and is now missing or changed."""
    after = stored(project)
    return [name for name, digest in before.items() if after.get(name) != digest]


def corrupt(project: Path) -> list[str]:
    """Anything in the workspace that a run would reuse and that is not whole."""
    ws, bad = project / ".tunegate", []
    for db in ws.rglob("*.sqlite"):
        if rows(db, "PRAGMA integrity_check") != [("ok",)]:
            bad.append(f"{db}: integrity check failed")
    for key, value, checksum in rows(ws / "cache.sqlite", "SELECT key, value, checksum FROM results"):
        if hashlib.sha256(value.encode()).hexdigest() != checksum:
            bad.append(f"cache row {key}")
    for folder in (ws / "adapters").iterdir():
        if folder.is_dir() and not folder.name.startswith("."):  # dot-folders are unfinished builds, never read
            meta = json.loads((folder / "tunegate.json").read_text())
            if not adapter_intact(folder, meta["fingerprint"]):
                bad.append(f"adapter {folder.name}")
    registry = ws / "registry"
    for adapter_id, fingerprint, path in rows(registry / "registry.sqlite", "SELECT adapter_id, fingerprint, path FROM versions"):
        if not adapter_intact(registry / path, fingerprint):
            bad.append(f"registry version {adapter_id}: artifact not whole")  # a half-promoted adapter
    champions = rows(registry / "registry.sqlite", "SELECT key, value FROM state WHERE key LIKE 'champion:%'")
    for key, champion in champions:
        task = key.removeprefix("champion:")  # one champion per task
        if not rows(registry / "registry.sqlite",
                    f"SELECT 1 FROM versions WHERE task = '{task}' AND adapter_id = '{champion}'"):
            bad.append(f"champion {champion} has no version")
    for run_dir in (project / "reports").iterdir():
        if (run_dir / "results.json").exists():
            validate(json.loads((run_dir / "results.json").read_text()))
        if (run_dir / "index.html").exists() and not (run_dir / "index.html").read_text().rstrip().endswith("</html>"):
            bad.append(f"{run_dir.name}/index.html is partial")
    return bad
