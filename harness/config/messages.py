"""One-line messages for config validation errors: the dotted key, what was wrong, and for an
unknown key the nearest valid one."""
from __future__ import annotations

import difflib

from pydantic import BaseModel


def nearest_key(model: type[BaseModel], loc: tuple) -> list[str]:
    """Walk `loc` through nested models and return the close matches for its last element."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.5)


def describe(err: dict, model: type[BaseModel], prefix: tuple = ()) -> str:
    """One line for a pydantic error: the dotted key, what was wrong, and the nearest valid key."""
    key = ".".join(str(p) for p in (*prefix, *err["loc"]))
    if err["type"] == "extra_forbidden":
        near = nearest_key(model, err["loc"])
        hint = f"; did you mean '{near[0]}'?" if near else "; remove it"
        return f"unknown key '{key}'{hint}"
    return f"key '{key}': {err['msg']} (got {err.get('input')!r})"
