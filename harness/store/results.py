"""Machine-readable run results: reports/<run-id>/results.json (schema in schemas/) and reports/latest."""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema

from harness import atomic, redaction

RESULTS_FILE = "results.json"
SCHEMA_VERSION = 1


@lru_cache(maxsize=1)
def results_schema() -> dict:
    return json.loads(resources.files("harness").joinpath("schemas/results.schema.json").read_text())


def validate(results: dict) -> None:
    """Raise jsonschema.ValidationError if `results` does not match the committed schema."""
    jsonschema.Draft202012Validator(results_schema()).validate(results)


def example_record(*, suite: str, example_id: str, role: str, prompt: list[dict], output: str, passed: bool,
                   scores: dict, slice: dict, critical: bool = False, critical_failed: bool = False,
                   reason: str = "") -> dict:
    """One per-example row: what a role answered to one item, and how it scored. `critical` says the
    example has must-pass checks; `critical_failed` that one of them failed. Secrets are redacted here,
    where every suite makes its records, so what reads or shortens a record (a suite test's failure
    message cuts the output at 200 characters) never sees one, not even cut in half."""
    record = {"suite": suite, "example_id": example_id, "role": role, "prompt": prompt, "output": output,
              "passed": passed, "scores": scores, "slice": slice, "critical": critical,
              "critical_failed": critical_failed, "reason": reason}
    return redaction.redact_data(record)


def write(reports_dir: Path, run_id: str, results: dict) -> Path:
    """Redact secrets, validate and write results.json atomically, then point reports/latest at this run."""
    results = redaction.redact_data(results)
    validate(results)
    run_dir = Path(reports_dir) / run_id
    atomic.write_json(run_dir / RESULTS_FILE, results)
    atomic.point_symlink(Path(reports_dir) / "latest", run_id)
    return run_dir / RESULTS_FILE
