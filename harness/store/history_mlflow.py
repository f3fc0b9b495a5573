"""The shared history in MLflow tracking: one MLflow run per tunegate run, promoted or not, and the
human grades of its outputs.

Each run gets its verdict and timings as tags, its config and data hashes as params, its suite
metrics and gate results as metrics (for MLflow's own UI and comparisons), and two artifacts:
results.json (every example) and `tunegate/row.json`, the exact summary the SQLite store keeps
(history.summarise), which is what `tunegate history`, the trend charts and `compare` read back, so
both backends feed them the same data. A run counts as recorded once its `tunegate.row_sha256` tag is
set, after its artifacts: a reader never sees half a run. Fetched rows are cached in the workspace by
their sha256 (a cached copy is never stale); a run's results.json is read from this project's
reports/<run-id>/, where a run made here wrote it, and is downloaded there when missing (a run made
on another machine), so `tunegate report` and `compare` work on every run of the shared history.

Grades are append-only artifacts of the run (`tunegate/grades/<time>-<random>.json`), merged on read
with a later import's grade replacing an earlier one of the same output, as in the SQLite store.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from harness import atomic
from harness.errors import TunegateError
from harness.store.history import Grade, Run, not_this_task, run_from_summary, summarise
from harness.store.registry_mlflow import RUN_TAG, SAFE_ID, TASK_TAG, MlflowStore
from harness.store.results import RESULTS_FILE

if TYPE_CHECKING:
    from harness.config import RegistryConfig

ROW_ARTIFACT = "tunegate/row.json"
ROW_TAG = "tunegate.row_sha256"
GRADES_DIR = "tunegate/grades"
BAD_KEY_CHARS = re.compile(r"[^\w\-. /]")  # what MLflow refuses in a metric or param name
MAX_KEY = 250
MAX_TAG = 5000


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def _key(name: str) -> str:
    return BAD_KEY_CHARS.sub("_", name)[:MAX_KEY]


def flat_metrics(value: object, prefix: str) -> Iterator[tuple[str, float]]:
    """(dotted name, number) for every number in nested suite metrics; lists (intervals) are left out."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flat_metrics(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        yield _key(prefix), float(value)


@dataclass(frozen=True)
class SharedRun(Run):
    """A run from the shared history; its results.json is downloaded when this machine lacks it."""

    fetch: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def results(self) -> dict:
        if self.fetch is not None and not self.results_path.is_file():
            self.fetch()
        return super().results()


class MlflowHistory:
    """The history store's methods (harness/history.py's History) on an MLflow experiment."""

    def __init__(self, store: MlflowStore, reports: Path, task: str = "default"):
        self.store = store
        self.reports = Path(reports)
        self.client = store.client
        self.task = task
        self.where = f"MLflow experiment {store.experiment!r} at {store.uri}"
        self._claimed = False

    @classmethod
    def connect(cls, config: RegistryConfig, workspace: Path, reports: Path, task: str = "default") -> "MlflowHistory":
        return cls(MlflowStore(config, workspace), reports, task)

    def _claim_untasked(self) -> None:
        """Runs recorded before tasks (no task tag) become this task's, once: the one project that used the
        experiment then. MLflow cannot search for a missing tag, so every recorded run is looked at."""
        if self._claimed:
            return
        for r in self.store.search(f"tags.`{ROW_TAG}` != ''"):
            if TASK_TAG not in r.data.tags:
                self.client.set_tag(r.info.run_id, TASK_TAG, self.task)
        self._claimed = True

    def record(self, results: dict, results_path: Path) -> None:
        """Log a finished run (its MLflow run may already hold the adapter it promoted)."""
        summary = summarise(results)
        v = summary["verdict"]
        at = _ms(summary["finished_at"])
        params = {"config_hash": summary["config_hash"],
                  "base_fingerprint": (summary.get("base_model") or {}).get("fingerprint"),
                  "candidate_id": (summary.get("candidate") or {}).get("id"),
                  "champion_id": (summary.get("champion") or {}).get("id"),
                  **{f"data.{k}": h for k, h in summary["data"].items()}}
        tags = {"tunegate.status": v["status"], "tunegate.verdict": v["line"][:MAX_TAG],
                "tunegate.failed_gates": json.dumps(v["failed_gates"])[:MAX_TAG],
                "tunegate.complete": str(bool(summary["complete"])).lower(),
                "tunegate.started_at": summary["started_at"], "tunegate.finished_at": summary["finished_at"],
                TASK_TAG: self.task}
        if summary.get("git_commit"):
            tags["mlflow.source.git.commit"] = summary["git_commit"]
        metrics = dict(flat_metrics(summary["suites"], ""))
        for g in summary["gates"]:
            if isinstance(g.get("value"), (int, float)):
                metrics[_key(f"gate.{g['name']}")] = float(g["value"])
            if g.get("passed") is not None:
                metrics[_key(f"gate.{g['name']}.passed")] = float(bool(g["passed"]))
        row = json.dumps({"summary": summary, "results_path": str(Path(results_path).resolve())}, sort_keys=True)
        sha = hashlib.sha256(row.encode()).hexdigest()
        with self.store.errors(f"recording run {summary['run_id']}"):
            mlflow_run = self.store.run_for(summary["run_id"], start_ms=_ms(summary["started_at"]))
            self._log(mlflow_run, params, tags, metrics, at)
            self.client.log_artifact(mlflow_run, str(results_path))
            self.client.log_text(mlflow_run, row, ROW_ARTIFACT)
            self.client.set_tag(mlflow_run, ROW_TAG, sha)  # last: now the run counts as recorded
            self.client.update_run(mlflow_run, status="FINISHED")  # (set_terminated prints the run's URL)
        atomic.write_text(self._row_file(sha), row)

    def _log(self, mlflow_run: str, params: dict, tags: dict, metrics: dict, at: int) -> None:
        from mlflow.entities import Metric, Param, RunTag

        params = [Param(_key(k), str(v)) for k, v in params.items() if v is not None]
        tags = [RunTag(k, str(v)) for k, v in tags.items()]
        metrics = [Metric(k, v, at, 0) for k, v in metrics.items()]
        # MLflow takes at most 100 params or tags and 1000 metrics in one batch.
        for i in range(0, len(params), 100):
            self.client.log_batch(mlflow_run, params=params[i:i + 100])
        for i in range(0, len(tags), 100):
            self.client.log_batch(mlflow_run, tags=tags[i:i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(mlflow_run, metrics=metrics[i:i + 1000])

    def _row_file(self, sha: str) -> Path:
        return self.store.cache / "rows" / f"{sha}.json"

    def _recorded(self) -> list:
        """Every recorded MLflow run of the experiment, oldest first (by the tunegate run's start)."""
        self._claim_untasked()
        runs = self.store.search(f"tags.`{ROW_TAG}` != '' AND tags.`{TASK_TAG}` = '{self.task}'")
        return sorted(runs, key=lambda r: (r.data.tags.get("tunegate.started_at", ""), r.data.tags[RUN_TAG]))

    def _run(self, mlflow_run) -> SharedRun:
        sha = mlflow_run.data.tags[ROW_TAG]
        cached = self._row_file(sha)
        if not cached.is_file():
            got = self.store.fetch_file(mlflow_run.info.run_id, ROW_ARTIFACT, cached.with_suffix(".download"))
            if hashlib.sha256(got.read_bytes()).hexdigest() != sha:
                got.unlink()
                raise TunegateError(f"{self.where}: run {mlflow_run.data.tags[RUN_TAG]}'s {ROW_ARTIFACT} does not "
                                    f"match its {ROW_TAG} tag; it was changed on the server, log the run again")
            got.replace(cached)
        row = json.loads(cached.read_text(encoding="utf-8"))
        summary = row["summary"]
        if summary["run_id"] != mlflow_run.data.tags[RUN_TAG] or not SAFE_ID.match(summary["run_id"]):
            raise TunegateError(f"{self.where}: MLflow run {mlflow_run.info.run_id} holds run "
                                f"{summary['run_id']!r} but is tagged {mlflow_run.data.tags[RUN_TAG]!r}; remove it")
        # Not the recorded path: on another machine it may not exist, or be another project's folder.
        path = self.reports / summary["run_id"] / RESULTS_FILE
        mlflow_id = mlflow_run.info.run_id

        def fetch() -> None:
            with self.store.errors(f"downloading run {summary['run_id']}'s {RESULTS_FILE}"):
                self.store.fetch_file(mlflow_id, RESULTS_FILE, path)

        return run_from_summary(summary, path, SharedRun, default_task=self.task, fetch=fetch)

    def runs(self, limit: int | None = None) -> list[Run]:
        """Runs oldest first; with `limit`, the newest `limit` of them."""
        with self.store.errors("listing the recorded runs"):
            recorded = self._recorded()
            if limit is not None:
                recorded = recorded[len(recorded) - limit:] if limit > 0 else []
            return [self._run(r) for r in recorded]

    def run(self, run_id: str) -> Run:
        """One run by id; an unknown id is a TunegateError naming the closest known one."""
        with self.store.errors(f"reading run {run_id}"):
            found = self.store.find_run(run_id)
            if found is not None and ROW_TAG in found.data.tags:
                task = found.data.tags.get(TASK_TAG, self.task)
                if task != self.task:
                    raise not_this_task(run_id, task, self.task)
                return self._run(found)
            known = [r.data.tags[RUN_TAG] for r in self._recorded()]
        near = difflib.get_close_matches(run_id, known, n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]}?" if near else "; `tunegate history` lists the runs"
        raise TunegateError(f"unknown run id {run_id!r}{hint}")

    def latest(self) -> Run:
        runs = self.runs(limit=1)
        if not runs:
            raise TunegateError(f"{self.where}: no runs recorded yet; run `pytest suites/` first")
        return runs[0]

    def add_grades(self, grades: list[Grade], source: str) -> None:
        """Store grades as one new artifact per run (every run checked first, so an unknown one adds none)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        by_run: dict[str, list[dict]] = {}
        for g in grades:
            by_run.setdefault(g.run_id, []).append(asdict(g))
        with self.store.errors("storing grades"):
            targets = {}
            for run_id in by_run:
                found = self.store.find_run(run_id)
                if found is None:
                    raise TunegateError(f"unknown run id {run_id!r}; `tunegate history` lists the runs")
                targets[run_id] = found.info.run_id
            for run_id, rows in by_run.items():
                name = f"{GRADES_DIR}/{time.time_ns():020d}-{secrets.token_hex(3)}.json"
                self.client.log_text(targets[run_id], json.dumps({"source": source, "imported_at": now,
                                                                  "grades": rows}), name)

    def grades(self, run_id: str) -> list[Grade]:
        with self.store.errors(f"reading run {run_id}'s grades"):
            found = self.store.find_run(run_id)
            if found is None:
                return []
            mlflow_id = found.info.run_id
            merged: dict[tuple, Grade] = {}
            for info in sorted(self.client.list_artifacts(mlflow_id, GRADES_DIR), key=lambda f: f.path):
                cached = self.store.cache / "grades" / mlflow_id / Path(info.path).name
                if not cached.is_file():  # each file is written once, under a name never reused
                    self.store.fetch_file(mlflow_id, info.path, cached)
                for g in json.loads(cached.read_text(encoding="utf-8"))["grades"]:
                    merged[(g["suite"], g["example_id"], g["role"], g["grader"])] = Grade(**g)
        return [merged[k] for k in sorted(merged)]

    def close(self) -> None:
        """Nothing to release: the client holds no open connection between calls."""
