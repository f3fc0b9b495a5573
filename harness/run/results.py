"""The run's results.json content (schema: harness/schemas/results.schema.json), built from its parts."""
from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

from harness.run.candidate import training_data
from harness.run.verdict import Verdict
from harness.store import results as results_io


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def candidate_entry(a) -> dict | None:
    # Each adapter's own training data, as its tunegate.json recorded it when it was trained (None for one
    # trained elsewhere): the run's `data` may postdate a reused or external adapter.
    return {"id": a.id, "fingerprint": a.fingerprint, "path": str(a.path), "trained_now": a.trained_now,
            "data": a.metadata.get("data")} if a else None


def champion_entry(champ) -> dict | None:
    return {"id": champ.adapter_id, "fingerprint": champ.fingerprint, "path": str(champ.path),
            "data": training_data(champ.path)} if champ else None


def build(*, run_id: str, started_at: str, root: Path, verdict: Verdict, complete: bool, base_model: dict,
          candidate, champion, config_hash: str, data: dict, suites: dict, gates: list[dict], examples: list[dict],
          engine: dict, data_card: dict | None, task: dict, coverage: dict, movers: dict) -> dict:
    a = candidate
    return {
        "schema_version": results_io.SCHEMA_VERSION,
        "run_id": run_id,
        "task": task,
        "started_at": started_at,
        "finished_at": now(),
        "git_commit": git_commit(root),
        "verdict": {"status": verdict.status, "line": verdict.line, "failed_gates": verdict.failed_gates,
                    "promoted_adapter": verdict.promoted_adapter},
        "complete": complete,
        "base_model": base_model,
        "candidate": candidate_entry(a),
        "champion": champion_entry(champion),
        "config_hash": config_hash,
        "data": data,
        "training": {k: a.metadata.get(k) for k in ("loss_history", "best_val_loss", "steps", "train_seconds")}
        if a and a.metadata else None,
        "suites": suites,
        "gates": gates,
        "examples": examples,
        "engine": engine,
        "data_card": data_card,
        "coverage": coverage,
        "movers": movers,
    }
