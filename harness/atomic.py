"""Atomic writes: a reader sees the old content or the complete new content, never a partial file.
Folders that take long to build (adapters, converted models) also get one builder at a time."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, fsync'd, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: object) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@contextlib.contextmanager
def build_dir(final: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it is renamed to `final` in one step.

    If `final` exists (another process built it), the new copy is discarded: content-addressed
    folders with the same name hold the same thing. With `replace` (a forced rebuild, under
    `one_builder`), the old folder is moved aside and the new one takes its name instead.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    tmp.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        yield tmp
        if replace and final.exists():
            old = final.with_name(f".{final.name}.replaced.tmp")  # a leftover one_builder sweeps
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def point_symlink(link: Path, target: str) -> None:
    """Make `link` point at `target`, replacing any previous link atomically."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def builder_lock(final: Path) -> FileLock:
    """The lock on building the folder `final` (an flock: the OS releases it if its holder dies)."""
    return FileLock(Path(final).with_name(f".{Path(final).name}.lock"))


@contextlib.contextmanager
def one_builder(final: Path, what: str) -> Iterator[None]:
    """Hold the lock on building the folder `final`, waiting (and saying so) while another process holds it.

    Two runs on one workspace (two CI jobs) that need the same adapter then train it once: the second
    waits, finds it built, and reuses it. Once the lock is held nobody else is building `final`, so
    its temporary siblings are the leftovers of a killed builder, and are removed.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = builder_lock(final)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"tunegate: another run is building {what} ({final.name}); waiting for it", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        for leftover in final.parent.glob(f".{final.name}.*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)
        yield
    finally:
        lock.release()
