"""`tunegate init [FOLDER]`: start a project for your own task in a new, empty or existing folder (an
existing repository, say): a commented tunegate.toml, small data templates, and the suite test files
that `pytest suites/` collects.

Everything is written from the templates shipped in the package (harness/cli/templates); the tunegate
repository's own suites/ is the same copy (tests/test_init.py keeps them identical). No existing file is
ever replaced without --force, and nothing is written when one would be.
"""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

from harness.config.schema import task_name_from_folder
from harness.errors import TunegateError

PROJECT = ("tunegate.toml", "data/train.jsonl", "data/val.jsonl", "data/golden.jsonl")
TASK_PLACEHOLDER = "{{task}}"


def templates() -> Path:
    return Path(str(resources.files("harness.cli") / "templates"))


def suite_files() -> list[str]:
    """The suite test files (and their conftest.py), as paths relative to the project folder."""
    return sorted(f"suites/{f.name}" for f in (templates() / "suites").glob("*.py"))


def render(rel: str, task: str) -> str:
    text = (templates() / rel).read_text(encoding="utf-8")
    return text.replace(TASK_PLACEHOLDER, task) if rel == "tunegate.toml" else text


def init_project(folder: Path, *, suites_only: bool = False, force: bool = False) -> list[Path]:
    """Write the project's files into `folder` (created if missing) and return them. Refuses, writing
    nothing, when one of them exists, unless `force`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TunegateError(f"{folder}: not a folder; name a new or existing folder for the project")
    rels = suite_files() if suites_only else [*PROJECT, *suite_files()]
    existing = [folder / rel for rel in rels if (folder / rel).exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise TunegateError(f"{existing[0]}: already exists{more}; tunegate init never overwrites a file: move it "
                            "away, or pass --force to replace the files init writes")
    task = task_name_from_folder(folder)
    written = []
    for rel in rels:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x" creates the file or fails: a file that appeared since the check above is not overwritten.
        with path.open("w" if force else "x", encoding="utf-8") as f:
            f.write(render(rel, task))
        written.append(path)
    return written


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    written = init_project(folder, suites_only=args.suites, force=args.force)
    shown = [str(p.relative_to(folder)) for p in written if p.parent.name != "suites"]
    suites = sum(p.parent.name == "suites" for p in written)
    print(f"tunegate: wrote {', '.join([*shown, f'suites/ ({suites} files)'])} in {folder.resolve()}")
    if not args.suites:
        print("tunegate: next: put your task's examples in data/ (the templates are a tiny sentiment task) and "
              "its rubrics in data/golden.jsonl, set model.base in tunegate.toml, then run `tunegate data check` "
              "and `pytest suites/`")
    return 0


def register(sub) -> None:
    """Add `tunegate init` to the command's subparsers."""
    p = sub.add_parser("init", help="start a project for your own task: a commented tunegate.toml, data templates "
                       "and the suite test files for `pytest suites/`")
    p.add_argument("folder", nargs="?", default=".", metavar="FOLDER",
                   help="the project folder, new or existing (default: the current folder)")
    p.add_argument("--suites", action="store_true",
                   help="write only suites/ (e.g. to update the suite files after upgrading tunegate)")
    p.add_argument("--force", action="store_true", help="replace the files init writes when they exist")
    p.set_defaults(func=cmd_init)
