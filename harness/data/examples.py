"""Examples from JSONL: load both common shapes, validate with jsonschema, split, check leakage.

Accepted line shapes: OpenAI chat `{"messages": [...]}` and `{"instruction", "input", "output"}`.
Every error names the file, the line and the field.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import jsonschema

from harness.data.rubrics import Check, build_check
from harness.errors import TunegateError

Kind = Literal["train", "golden"]


@dataclass(frozen=True)
class Example:
    """One conversation. For training the last message is the assistant's target; for golden
    examples the messages are the prompt and `rubric` decides whether an output passes."""

    id: str
    messages: tuple[dict[str, str], ...]
    origin: str  # "file:line", for error messages
    meta: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None
    rubric: tuple[Check, ...] = ()
    critical: bool = False
    critical_checks: tuple[int, ...] = ()  # rubric indices marked "critical": true
    slice: dict[str, Any] = field(default_factory=dict)

    def prompt(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        """The messages a model answers: everything before a final assistant turn, with the
        configured system prompt first when the example has none."""
        msgs = list(self.messages)
        if msgs and msgs[-1]["role"] == "assistant":
            msgs = msgs[:-1]
        if system_prompt and msgs[0]["role"] != "system":
            msgs.insert(0, {"role": "system", "content": system_prompt})
        return msgs

    def must_pass(self) -> tuple[int, ...]:
        """Indices of the rubric checks whose failure fails the example hard: all of them for a
        critical example, else the checks marked critical."""
        return tuple(range(len(self.rubric))) if self.critical else self.critical_checks

    def target(self) -> str | None:
        """The final assistant turn, if any."""
        last = self.messages[-1]
        return last["content"] if last["role"] == "assistant" else None


@lru_cache(maxsize=1)
def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    schema = json.loads(resources.files("harness").joinpath("schemas/example.schema.json").read_text())
    return {
        shape: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{shape}", "$defs": schema["$defs"]})
        for shape in ("chat", "instruction")
    }


def _field_path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(record)"


def _to_messages(record: dict) -> list[dict[str, str]]:
    if "messages" in record:
        return [dict(m) for m in record["messages"]]
    user = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
    msgs = [{"role": "user", "content": user}]
    if "output" in record:
        msgs.append({"role": "assistant", "content": record["output"]})
    return msgs


def decode_line(line: str, where: str):
    """One JSONL line as a JSON value, or a one-line TunegateError naming `where`."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise TunegateError(f"{where}: invalid JSON ({e.msg} at column {e.colno}); fix or remove the line") from None


def record_kind(record: dict) -> Kind:
    """What a record is for when no config says so: with a rubric it is an evaluation item."""
    return "golden" if "rubric" in record else "train"


def parse_record(record, where: str, kind: Kind, base_dir: Path, fallback_id: str) -> Example:
    """A decoded line as an Example: schema-validated, with the rules of its kind; errors name where and the field."""
    if not isinstance(record, dict):
        raise TunegateError(f"{where}: expected a JSON object, got {type(record).__name__}")
    shape = "chat" if "messages" in record else "instruction" if "instruction" in record else None
    if shape is None:
        raise TunegateError(f"{where}: needs 'messages' (chat) or 'instruction' (+ 'input', 'output')")
    error = jsonschema.exceptions.best_match(_validators()[shape].iter_errors(record))
    if error is not None:
        raise TunegateError(f"{where}: field '{_field_path(error)}': {error.message}")
    messages = _to_messages(record)
    if kind == "train":
        if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            raise TunegateError(f"{where}: field 'messages': the last turn must be a non-empty assistant answer")
    else:
        if not record.get("rubric"):
            raise TunegateError(f"{where}: field 'rubric': a golden example needs at least one check")
    if not any(m["role"] == "user" for m in messages):
        raise TunegateError(f"{where}: field 'messages': needs at least one user turn")
    checks = []
    for i, raw in enumerate(record.get("rubric", ())):
        try:
            checks.append(build_check(raw, base_dir))
        except ValueError as e:
            raise TunegateError(f"{where}: field 'rubric[{i}]': {e}") from None
    reference = record.get("reference")
    if reference is None and messages[-1]["role"] == "assistant":
        reference = messages[-1]["content"]
    return Example(
        id=str(record.get("id", fallback_id)),
        messages=tuple(messages),
        origin=where,
        meta=record.get("meta", {}),
        reference=reference,
        rubric=tuple(checks),
        critical=record.get("critical", False),
        critical_checks=tuple(i for i, raw in enumerate(record.get("rubric", ())) if raw.get("critical")),
        slice=record.get("slice", {}),
    )


def read_lines(path: Path):
    """(file:line, text) for each non-blank line of a UTF-8 file, with one-line errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TunegateError(f"{path}: file not found; check the path in the config") from None
    except IsADirectoryError:
        raise TunegateError(f"{path}: is a folder; point the config at a .jsonl file") from None
    except UnicodeDecodeError as e:
        raise TunegateError(f"{path}: not UTF-8 (byte {e.start}); re-save the file as UTF-8") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield f"{path}:{lineno}", line


def load_records(path: Path, schema: dict) -> list[tuple[str, dict]]:
    """A suite's JSONL data file, each line validated against `schema` (and ids unique when present):
    (file:line, record) pairs. Errors name the file, line and field."""
    path = Path(path)
    validator = jsonschema.Draft202012Validator(schema)
    out, seen = [], {}
    for where, line in read_lines(path):
        record = decode_line(line, where)
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is not None:
            raise TunegateError(f"{where}: field '{_field_path(error)}': {error.message}")
        if isinstance(record, dict) and "id" in record:
            if record["id"] in seen:
                raise TunegateError(f"{where}: field 'id': duplicate id {record['id']!r} (first at {seen[record['id']]})")
            seen[record["id"]] = where
        out.append((where, record))
    if not out:
        raise TunegateError(f"{path}: no records; the file is empty")
    return out


def load_jsonl(path: Path, kind: Kind = "train") -> list[Example]:
    """Load and validate a JSONL file of examples; raise TunegateError naming file:line:field."""
    path = Path(path)
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for where, line in read_lines(path):
        lineno = int(where.rsplit(":", 1)[1])
        ex = parse_record(decode_line(line, where), where, kind, path.parent, fallback_id=f"{path.stem}-{lineno}")
        if ex.id in seen:
            raise TunegateError(f"{where}: field 'id': duplicate id {ex.id!r} (first at {seen[ex.id]})")
        seen[ex.id] = where
        examples.append(ex)
    if not examples:
        raise TunegateError(f"{path}: no examples; the file is empty")
    return examples


def normalise(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form of a text, for duplicate detection."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def prompt_key(example: Example) -> str:
    """What identifies an example's question: its normalised non-assistant turns."""
    return normalise(" ".join(m["content"] for m in example.messages if m["role"] != "assistant"))


def split_train_val(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Deterministic split by a seeded hash of each id, so it is stable under reordering of the file."""
    ranked = sorted(examples, key=lambda e: hashlib.sha256(f"{seed}:{e.id}".encode()).hexdigest())
    n_val = max(1, math.ceil(len(examples) * fraction))
    val_ids = {e.id for e in ranked[:n_val]}
    return [e for e in examples if e.id not in val_ids], [e for e in examples if e.id in val_ids]


def check_leakage(train: list[Example], others: list[list[Example]]) -> None:
    """Raise if any evaluation or val example asks the same thing as a training example."""
    seen = {prompt_key(e): e for e in train}
    for group in others:
        for ex in group:
            hit = seen.get(prompt_key(ex))
            if hit is not None:
                raise TunegateError(
                    f"{ex.origin}: example {ex.id!r} leaks: the same prompt is in training data at {hit.origin}; "
                    "remove it from one of the files"
                )


def stable_subset(items: list, n: int | None, key=lambda item: item.id) -> list:
    """At most `n` items chosen by a hash of their key (stable when the file grows or is reordered),
    returned in their original order."""
    if n is None or len(items) <= n:
        return list(items)
    chosen = set(sorted(range(len(items)), key=lambda i: hashlib.sha256(str(key(items[i])).encode()).hexdigest())[:n])
    return [item for i, item in enumerate(items) if i in chosen]


# ---- preference pairs (training.method = "dpo") -------------------------------------------
PAIR_SCHEMA = {
    "type": "object",
    "required": ["prompt", "chosen", "rejected"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": ["string", "integer"]},
        "meta": {"type": "object"},
        "prompt": {"oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["role", "content"], "additionalProperties": False,
                "properties": {"role": {"enum": ["system", "user", "assistant"]}, "content": {"type": "string"}}}},
        ]},
        "chosen": {"type": "string", "minLength": 1},
        "rejected": {"type": "string", "minLength": 1},
    },
}
PAIR_SHAPE = ('each line is {"prompt": "..." or [messages], "chosen": "better answer", "rejected": "worse answer"}')


@dataclass(frozen=True)
class PreferencePair:
    """One DPO pair: a prompt (a conversation ending on a user turn) and two answers to it, the preferred first."""

    id: str
    messages: tuple[dict[str, str], ...]
    chosen: str
    rejected: str
    origin: str  # "file:line", for error messages

    def as_example(self) -> Example:
        """The prompt answered with the chosen answer: what the leakage check and the prompt rendering see."""
        return Example(id=self.id, messages=(*self.messages, {"role": "assistant", "content": self.chosen}),
                       origin=self.origin)

    def prompt(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        return self.as_example().prompt(system_prompt)


def parse_pair(record, where: str, fallback_id: str) -> PreferencePair:
    """A decoded line as a PreferencePair; each problem is one TunegateError naming `where`, the field and the fix."""
    if not isinstance(record, dict):
        raise TunegateError(f"{where}: expected a JSON object, got {type(record).__name__}; {PAIR_SHAPE}")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(PAIR_SCHEMA).iter_errors(record))
    if error is not None:
        raise TunegateError(f"{where}: field '{_field_path(error)}': {error.message}; {PAIR_SHAPE}")
    prompt = record["prompt"]
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if messages[-1]["role"] != "user":
        raise TunegateError(f"{where}: field 'prompt': the conversation ends on a '{messages[-1]['role']}' turn; "
                            "end it with the user turn that 'chosen' and 'rejected' answer")
    for name in ("chosen", "rejected"):
        if not record[name].strip():
            raise TunegateError(f"{where}: field '{name}': the answer is blank; write the answer or remove the line")
    if record["chosen"].strip() == record["rejected"].strip():
        raise TunegateError(f"{where}: fields 'chosen' and 'rejected' hold the same answer, which teaches nothing; "
                            "make the rejected answer the worse one, or remove the line")
    return PreferencePair(id=str(record.get("id", fallback_id)), messages=tuple(messages), chosen=record["chosen"],
                          rejected=record["rejected"], origin=where)


def load_pairs(path: Path) -> list[PreferencePair]:
    """Load and validate a JSONL file of preference pairs; raise TunegateError naming file:line, field and fix."""
    path = Path(path)
    pairs: list[PreferencePair] = []
    seen: dict[str, str] = {}
    for where, line in read_lines(path):
        lineno = int(where.rsplit(":", 1)[1])
        pair = parse_pair(decode_line(line, where), where, fallback_id=f"{path.stem}-{lineno}")
        if pair.id in seen:
            raise TunegateError(f"{where}: field 'id': duplicate id {pair.id!r} (first at {seen[pair.id]}); "
                                "give each pair its own id")
        seen[pair.id] = where
        pairs.append(pair)
    if not pairs:
        raise TunegateError(f"{path}: no preference pairs; the file is empty")
    return pairs
