"""The configuration reference (docs/configuration.md), generated from the config models' fields.

`render()` walks the root model and every model nested in it into Markdown: one section per TOML
table, one row per key (its type and choices, its default, its description). Regenerate with
`python -m harness.config.reference --write docs/configuration.md`; tests/test_docs.py fails when
the checked-in copy differs.
"""
from __future__ import annotations

import argparse
import enum
import json
import os
import re
import sys
import types
import typing
from pathlib import Path, PurePath

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from harness.config import Config

REGENERATE = "python -m harness.config.reference --write docs/configuration.md"

INTRO = f"""\
# Configuration reference

<!-- Generated from the config models by `{REGENERATE}`; edit the models' field descriptions, not this file. -->

A run reads one TOML file: `--tunegate-config PATH` (pytest) or `--config PATH` (the `tunegate`
command), else the file named by `$TUNEGATE_CONFIG`, else `tunegate.toml` in the current folder.
Every key is optional unless marked *required*; a key left out takes the default below. An unknown
key is an error that names the nearest valid key. Relative paths resolve against the config file's
folder, and must stay inside the project (except `workspace.dir`). A key whose default is *unset*
is simply left out of the file (TOML has no null).

A config can start with `extends = "other.toml"`: its tables are merged over that file's, key by
key, and relative paths resolve against the extended file's folder.
"""

_SCALARS = {str: "string", int: "integer", float: "float", bool: "boolean"}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _model_in(annotation) -> type[BaseModel] | None:
    """The model class a field holds (`Model` or `Model | None`), or None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(models) == 1:
            return _model_in(models[0])
    return None


def _plural(name: str) -> str:
    return name + ("es" if name.endswith("s") else "s")


def type_name(annotation) -> str:
    """A field's type as a TOML user reads it: `string`, `path`, `array of strings`, `"a" or "b"`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " or ".join(f"`{toml_value(a)}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(named)
    if origin in (tuple, list, set, frozenset):
        item = args[0] if args else typing.Any
        inner = type_name(item)
        return f"array of {_plural(inner) if inner in _SCALARS.values() or inner == 'path' else inner}"
    if origin is dict:
        return "table"
    if isinstance(annotation, type):
        if issubclass(annotation, PurePath):
            return "path"
        if issubclass(annotation, BaseModel):
            return "table"
        if annotation in _SCALARS:
            return _SCALARS[annotation]
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def constraints(field: FieldInfo) -> list[str]:
    """The field's bounds and patterns (`>= 0`, `< 1`, `pattern ...`), from its validation metadata."""
    out = []
    for meta in field.metadata:
        for attr, sign in _BOUNDS:
            if getattr(meta, attr, None) is not None:
                out.append(f"{sign} {toml_value(getattr(meta, attr))}")
        for attr, label in (("min_length", "length >="), ("max_length", "length <=")):
            if getattr(meta, attr, None) is not None:
                out.append(f"{label} {getattr(meta, attr)}")
        if getattr(meta, "pattern", None) is not None:
            out.append(f"pattern `{meta.pattern}`")
    return out


def toml_value(value) -> str:
    """A default written as it would be in TOML: paths as strings, tuples as arrays, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return toml_value(value.value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, PurePath):
        return json.dumps(value.as_posix())
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list | set | frozenset):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "*unset*"
    return "`" + toml_value(value).replace("`", "'") + "`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(table: str) -> str:
    """GitHub's anchor for a heading `` `[table]` ``: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", f"[{table}]".lower()).replace(" ", "-")


def _tables(model: type[BaseModel], prefix: str, about: str):
    """(dotted table name, model, description) for `model` and every model nested in it, depth first."""
    yield prefix, model, about
    for name, field in model.model_fields.items():
        nested = _model_in(field.annotation)
        if nested is not None and not field.exclude:
            yield from _tables(nested, f"{prefix}.{name}" if prefix else name, field.description or "")


def _section(table: str, model: type[BaseModel], about: str) -> list[str]:
    heading = f"## `[{table}]`" if table else "## Top level"
    lines = [heading, ""]
    if about:  # the description of the field that holds the table (class docstrings are for developers)
        lines += [about, ""]
    rows = []
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, never written in the file (e.g. `root`)
            continue
        key = f"{table}.{name}" if table else name
        nested = _model_in(field.annotation)
        if nested is not None:
            optional = "optional table, absent by default" if field.default is None else "table"
            rows.append(f"| `{key}` | {optional} | | see [`[{key}]`](#{_anchor(key)}) |")
            continue
        kind = ", ".join([type_name(field.annotation), *constraints(field)])
        rows.append(f"| `{key}` | {_cell(kind)} | {_cell(default_text(field))} | {_cell(field.description or '')} |")
    if rows:
        lines += ["| key | type | default | description |", "|---|---|---|---|", *rows, ""]
    return lines


def render(root: type[BaseModel] | None = None) -> str:
    """The Markdown reference of `root` (default: the run's `Config`) and every table nested in it."""
    root = root or Config
    tables = [t for t in _tables(root, "", "") if t[0] or any(
        not f.exclude and _model_in(f.annotation) is None for f in root.model_fields.values())]
    lines = [INTRO, "## Tables", ""]
    lines += [f"- [`[{name}]`](#{_anchor(name)})" if name else "- [Top level](#top-level)"
              for name, _, _ in tables]
    lines.append("")
    for name, model, about in tables:
        lines += _section(name, model, about)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.config.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="PATH", help="write the reference to PATH instead of stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.write is None:
        sys.stdout.write(text)
        return 0
    out = Path(args.write)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a file
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
