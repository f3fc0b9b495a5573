"""The workspace's stores, opened (and checked) before anything trains, and nothing created: a first
run's workspace appears only once it has something to hold."""
from __future__ import annotations

from pathlib import Path

from harness.errors import TunegateError
from harness.fingerprints import adapter_intact
from harness.store import sqlite as sqlite_store
from harness.store.cache import CACHE_FILE
from harness.store.history import HISTORY_FILE
from harness.store.registry import Registry


def check_stores(workspace: Path) -> None:
    """A damaged SQLite store is a one-line error now rather than mid-run."""
    for path in (workspace / CACHE_FILE, workspace / HISTORY_FILE, Registry.db_in(workspace)):
        if path.is_file():
            sqlite_store.check(path)


def check_champion(champion) -> None:
    """Refuse a champion whose stored files changed since it was promoted."""
    if champion is not None and not adapter_intact(champion.path, champion.fingerprint):
        raise TunegateError(
            f"registry: the champion {champion.adapter_id} in {champion.path} is missing files or does not match its "
            "fingerprint; restore that folder, or `tunegate rollback` to the previous champion")
