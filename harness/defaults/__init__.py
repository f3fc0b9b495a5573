"""The evaluation data shipped inside the package, with their licences: safety (HarmBench, XSTest),
an MMLU slice, BBQ and generic open-ended prompts for the diversity suite.

A config names one of these files as `tunegate:<folder>/<file>`, e.g. `tunegate:safety/xstest.jsonl`:
the suites' defaults do, so they work from any project folder and from an installed wheel, where the
repository's fixtures/ do not exist. Any other relative path resolves against the config's folder.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

SCHEME = "tunegate:"


def is_packaged(p: Path | str) -> bool:
    """Whether a configured path names a file of the packaged data (`tunegate:...`)."""
    return str(p).startswith(SCHEME)


def folder() -> Path:
    """The installed package's data folder (this package's folder: wheels install it unzipped)."""
    return Path(str(resources.files(__name__))).resolve()


def packaged_path(p: Path | str) -> Path:
    """The file a `tunegate:<folder>/<file>` path names, resolved (it may lie outside the data folder if
    the path climbs out with `..` or starts with `/`: the config loader refuses those)."""
    return (folder() / str(p)[len(SCHEME):]).resolve()


def examples() -> list[str]:
    """One packaged data file of each folder, as a config names it (for error messages)."""
    root, first = folder(), {}
    for f in sorted(root.rglob("*.jsonl")):
        first.setdefault(f.parent.name, f"{SCHEME}{f.relative_to(root).as_posix()}")
    return list(first.values())
