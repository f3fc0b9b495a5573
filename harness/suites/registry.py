"""Finding a suite by name: the built-in ones, those other packages register under the entry-point
group `tunegate.suites`, and one named in the config as `suite = "module:Class"` (a module of the
user's repository, imported from the config's folder)."""
from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points
from pathlib import Path

from harness.errors import TunegateError
from harness.suites import BUILTIN
from harness.suites.api import Suite

ENTRY_POINT_GROUP = "tunegate.suites"


def _instance(obj: object, where: str) -> Suite:
    suite = obj() if isinstance(obj, type) else obj
    if not isinstance(suite, Suite):
        raise TunegateError(f"{where}: {obj!r} is not a tunegate suite; subclass harness.suites.api.Suite")
    return suite


def installed() -> dict[str, Suite]:
    """The built-in suites and every suite installed packages register (entry point name = suite name)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # a built-in name cannot be taken over by a plugin
        where = f"entry point '{ep.name}' ({ep.value}) of group {ENTRY_POINT_GROUP}"
        try:
            loaded = ep.load()
        except Exception as e:  # a broken plugin is named, not a traceback
            raise TunegateError(f"{where}: cannot be imported: {type(e).__name__}: {e}") from None
        suite = _instance(loaded, where)
        if suite.name != ep.name:
            raise TunegateError(f"{where}: the suite's name is {suite.name!r}; register it under that name")
        found[ep.name] = suite
    return found


def load_reference(ref: str, root: Path, key: str) -> Suite:
    """The suite a config names as "module:Class" (or "module:instance"), importing the module with the
    config's folder on the import path, as pytest does with a project's rootdir."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise TunegateError(f"key '{key}': expected \"module:Class\", e.g. \"my_suites.toxicity:Toxicity\" (got {ref!r})")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TunegateError(f"key '{key}': cannot import {module_name!r} ({e}); the module must be importable "
                            f"from {root} or installed") from None
    if not hasattr(module, attr):
        raise TunegateError(f"key '{key}': module {module_name!r} has no {attr!r}")
    return _instance(getattr(module, attr), f"key '{key}'")
