"""Loading the config: read the TOML (following `extends`), validate it, and keep every path it names
inside the project. Unknown keys are errors that suggest the nearest valid key; relative paths
resolve against the config file's folder, and `tunegate:<folder>/<file>` names data shipped in the package."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness import defaults
from harness.config.messages import describe
from harness.config.schema import Config
from harness.errors import TunegateError

DEFAULT_CONFIG = "tunegate.toml"
CONFIG_ENV = "TUNEGATE_CONFIG"


def _paths(section: BaseModel, prefix: str = ""):
    """(key, path) for every path the config names, nested sections and lists of paths included."""
    for name, value in section:
        if name == "root":
            continue
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _paths(value, f"{key}.")
        elif isinstance(value, Path):
            yield key, value
        elif isinstance(value, tuple | list):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Path))


UNCONFINED = {"workspace.dir"}  # where the run keeps its state: a team may put it on shared storage
OUTPUTS = {"workspace.dir", "workspace.reports"}  # written to: never the package's data


def check_confined(config: Config, path: Path) -> None:
    """Every file or folder the config names must lie inside the project (the config's folder), symlinks
    followed: a run reads its data and writes its reports there, and keeps its state in its workspace,
    nowhere else. The workspace itself may be anywhere, and model.base (not a path: it names a model, a
    folder anywhere or a hub id) is read-only. A `tunegate:` path names the data shipped in the package
    and must stay inside that data folder."""
    root = config.root.resolve()
    for key, value in _paths(config):
        target = config.resolve(value)
        if defaults.is_packaged(value):
            if key in OUTPUTS:
                raise TunegateError(f"{path}: key '{key}' = '{value}' names the package's own data, which tunegate "
                                    "only reads; name a folder of the project, or leave the key unset")
            if not target.is_relative_to(defaults.folder()):
                raise TunegateError(f"{path}: key '{key}' = '{value}' leaves the data shipped in the package; name "
                                    f"one of its files, e.g. {', '.join(defaults.examples())}")
        elif key not in UNCONFINED and not target.is_relative_to(root):
            raise TunegateError(f"{path}: key '{key}' = '{value}' resolves to {target}, outside the "
                                f"project folder {root}; tunegate reads data and writes reports only inside its "
                                "project: move it there or use a path inside it")


def _read_toml(path: Path) -> dict:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TunegateError(f"{path}: config file not found; create it, or point to one with "
                            "`pytest --tunegate-config PATH` or `tunegate --config PATH`") from None
    except tomllib.TOMLDecodeError as e:
        raise TunegateError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError:
        raise TunegateError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if "root" in raw:
        raise TunegateError(f"{path}: unknown key 'root'; paths resolve against the config's folder")
    return raw


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _resolve_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, Path]:
    """The config's table merged over the one it `extends` (recursively), and the folder of the
    config at the top of the chain, against which every relative path resolves."""
    path = path.resolve()
    if path in seen:
        raise TunegateError(f"{path}: 'extends' loops back to this file; remove the cycle")
    raw = _read_toml(path)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, path.parent
    if not isinstance(parent, str):
        raise TunegateError(f"{path}: key 'extends': expected a path to another config (got {parent!r})")
    base, root = _resolve_extends(path.parent / parent, (*seen, path))
    return _merge(base, raw), root


def load_config(path: Path) -> Config:
    """Read and validate a config file; raise TunegateError with one clear line on any problem.

    A config may start with `extends = "other.toml"`: its tables are merged over that file's, key
    by key, and relative paths in either resolve against the extended file's folder (so a variant
    kept anywhere reuses the project's paths unchanged)."""
    path = Path(path)
    raw, root = _resolve_extends(path)
    try:
        config = Config.model_validate({**raw, "root": root}, context={"root": root})
    except ValidationError as e:
        raise TunegateError(f"{path}: {describe(e.errors()[0], Config)}") from None
    except TunegateError as e:  # a plugin suite's table
        raise TunegateError(f"{path}: {e}") from None
    check_confined(config, path)
    return config


def config_path(option: str | None, cwd: Path) -> Path:
    """The config file: the pytest/CLI option, else $TUNEGATE_CONFIG, else tunegate.toml in `cwd`."""
    chosen = option or os.environ.get(CONFIG_ENV)
    return Path(cwd) / chosen if chosen else Path(cwd) / DEFAULT_CONFIG
