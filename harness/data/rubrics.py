"""Rubric checks for golden examples: each is a callable `(output, reference) -> CheckResult`.

A golden example passes when every check in its rubric passes. Checks are built from the
JSON objects in the golden file by `build_check`, which validates regexes and JSON Schemas
up front so that a broken rubric fails at load time, not in the middle of a run.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import jsonschema
from rouge_score import rouge_scorer


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""
    score: float | None = None


@dataclass(frozen=True)
class Score:
    """The verdict of a whole rubric on one output."""

    passed: bool
    checks: tuple[CheckResult, ...]
    critical_failed: bool = False  # a check marked critical (or any check of a critical example) failed

    def reason(self) -> str:
        """The failed checks, for an xfail reason or a report row."""
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.passed)

    def as_dict(self) -> dict[str, Any]:
        return {c.name: (c.score if c.score is not None else c.passed) for c in self.checks}


Check = Callable[[str, "str | None"], CheckResult]


def parse_json_output(output: str) -> Any:
    """Parse a model answer as JSON, tolerating a Markdown code fence around it."""
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    return json.loads(fenced.group(1) if fenced else text)


def _exact(value: str) -> Check:
    def check(output: str, reference: str | None) -> CheckResult:
        ok = output.strip() == value.strip()
        return CheckResult("exact", ok, "" if ok else f"expected {value!r}")

    return check


def _contains(value: str, case_sensitive: bool = False, negate: bool = False) -> Check:
    name = f"{'not_contains' if negate else 'contains'}[{value}]"

    def check(output: str, reference: str | None) -> CheckResult:
        hay, needle = (output, value) if case_sensitive else (output.casefold(), value.casefold())
        ok = (needle in hay) != negate
        return CheckResult(name, ok, "" if ok else f"{'found' if negate else 'missing'} {value!r}")

    return check


def _regex(pattern: str) -> Check:
    compiled = re.compile(pattern)

    def check(output: str, reference: str | None) -> CheckResult:
        ok = compiled.search(output) is not None
        return CheckResult("regex", ok, "" if ok else f"no match for /{pattern}/")

    return check


def _json_schema(schema: dict) -> Check:
    validator = jsonschema.Draft202012Validator(schema)

    def check(output: str, reference: str | None) -> CheckResult:
        try:
            data = parse_json_output(output)
        except ValueError as e:
            return CheckResult("json_schema", False, f"not JSON ({e.args[0][:60]})")
        error = jsonschema.exceptions.best_match(validator.iter_errors(data))
        if error is None:
            return CheckResult("json_schema", True)
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return CheckResult("json_schema", False, f"schema: {where}: {error.message[:80]}")

    return check


def _json_field(field: str, equals: Any) -> Check:
    name = f"json_field[{field}]"

    def check(output: str, reference: str | None) -> CheckResult:
        try:
            data = parse_json_output(output)
        except ValueError:
            return CheckResult(name, False, "not JSON")
        got = data.get(field) if isinstance(data, dict) else None
        ok = got == equals
        return CheckResult(name, ok, "" if ok else f"expected {equals!r}, got {got!r}")

    return check


@lru_cache(maxsize=1)
def _rouge() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(reference: str, output: str) -> float:
    """ROUGE-L F1 between a reference and an output (rouge-score's tokenizer)."""
    return _rouge().score(reference, output)["rougeL"].fmeasure


def _rouge_l(minimum: float) -> Check:
    def check(output: str, reference: str | None) -> CheckResult:
        value = rouge_l(reference or "", output)
        ok = value >= minimum
        return CheckResult("rouge_l", ok, "" if ok else f"{value:.2f} < {minimum}", score=round(value, 4))

    return check


def build_check(raw: dict, base_dir: Path) -> Check:
    """Turn one rubric entry (already schema-valid) into a check; raise ValueError if it cannot work."""
    kind = raw["type"]
    if kind == "exact":
        return _exact(raw["value"])
    if kind in ("contains", "not_contains"):
        return _contains(raw["value"], raw.get("case_sensitive", False), negate=kind == "not_contains")
    if kind == "regex":
        try:
            return _regex(raw["pattern"])
        except re.error as e:
            raise ValueError(f"invalid regex {raw['pattern']!r}: {e}") from None
    if kind == "json_schema":
        schema = raw["schema"]
        if isinstance(schema, str):
            schema_path = (base_dir / schema).resolve()
            try:
                schema = json.loads(schema_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ValueError(f"JSON Schema file not found: {schema_path}; give the 'schema' path relative to "
                                 "this file's folder, or the schema itself") from None
            except ValueError as e:
                raise ValueError(f"JSON Schema file {schema_path} is not valid JSON: {e}") from None
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise ValueError(f"invalid JSON Schema: {e.message}") from None
        return _json_schema(schema)
    if kind == "json_field":
        return _json_field(raw["field"], raw["equals"])
    if kind == "rouge_l":
        return _rouge_l(float(raw["min"]))
    raise ValueError(f"unknown check type {kind!r}")


def score(checks: tuple[Check, ...], output: str, reference: str | None, critical: tuple[int, ...] = ()) -> Score:
    """Run every check of a rubric on one output; `critical` holds the indices of must-pass checks."""
    results = tuple(check(output, reference) for check in checks)
    return Score(passed=all(r.passed for r in results), checks=results,
                 critical_failed=any(not results[i].passed for i in critical))
