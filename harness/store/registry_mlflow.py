"""The shared registry in MLflow: each promoted adapter is a version of one registered model, the
champion is its alias `champion`, and a verified copy of the champion is kept in the workspace.

For teams whose runs happen on many machines (ephemeral CI runners): every workspace that points
at the same tracking server sees the same champion, versions and events. The adapter's files are
the artifacts of the MLflow run of the tunegate run that promoted it (`adapter/`); the version's
tags carry tunegate's adapter id, fingerprint, base fingerprint, run id and gate results.

Events (promotions, rollbacks, with time and reason) are tags of the registered model, one per
event under a key that sorts by time, so writers on different machines only ever add keys and never
overwrite each other's. The alias is then set to the champion those events leave (their replay), so
a later write repairs an alias that an interrupted one left behind. MLflow has no transactions:
two rollbacks at the same moment on two machines may both pop the same champion.

mlflow is an optional dependency (`tunegate[mlflow]`), imported only when this backend is chosen.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from harness import atomic
from harness.errors import TunegateError
from harness.fingerprints import adapter_intact
from harness.store.registry import PROMOTIONS, ROLLBACK, Version, nothing_to_roll_back, replay

if TYPE_CHECKING:
    from harness.config import RegistryConfig

INSTALL = 'registry.backend = "mlflow" needs the mlflow package: pip install "tunegate[mlflow]"'
ALIAS = "champion"
ADAPTER_ARTIFACT = "adapter"  # the adapter's files, in the promoting run's artifacts
CACHE = "mlflow"  # under the workspace: verified copies of adapters, fetched rows and results
RUN_TAG = "tunegate.run_id"
TASK_TAG = "tunegate.task"  # on a registered model and on each run: the task it belongs to
EVENT_PREFIX = "tunegate.event."
TAG = "tunegate."  # prefix of the version tags
PROBE_TIMEOUT = 10.0
MAX_REASON = 10_000  # characters of a reason kept in an event (tag values stop at 100k)
# A run or adapter id from the server goes into search filters and folder names: no quotes, no '/', no '..'.
SAFE_ID = re.compile(r"^\w[\w.\-]*$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def import_mlflow():
    """The mlflow module, or one line saying how to install it."""
    try:
        import mlflow  # noqa: F401
        from mlflow import MlflowClient  # noqa: F401
    except ImportError:
        raise TunegateError(INSTALL) from None
    return mlflow


def probe(uri: str) -> None:
    """Fail fast, in one line, when an HTTP tracking server does not answer: the MLflow client retries a
    refused connection for minutes before it gives up."""
    if not uri.startswith(("http://", "https://")):
        return  # a database or folder URI: MLflow opens it itself
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT):
            pass
    except urllib.error.HTTPError:
        return  # it answered; authentication is the client's business
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise TunegateError(f"registry.tracking_uri = {uri}: cannot reach the MLflow server ({reason}); start it, "
                            "or set registry.tracking_uri to the server's URL") from None


class MlflowStore:
    """One connection to the tracking server and model registry, shared by the registry and the history."""

    def __init__(self, config: RegistryConfig, workspace: Path):
        self.uri = config.tracking_uri
        probe(self.uri)  # first: a run against a dead server fails before the seconds mlflow takes to import
        mlflow = import_mlflow()
        # Downloads would draw progress bars over pytest's and the CLI's output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.client = mlflow.MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        self.experiment = config.experiment
        self.model_name = config.model_name
        self.cache = Path(workspace) / CACHE
        self._experiment_id: str | None = None

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn the client's failures into one line naming the server and what was being done."""
        from mlflow.exceptions import MlflowException
        from requests.exceptions import RequestException

        try:
            yield
        except (MlflowException, RequestException) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise TunegateError(f"registry.tracking_uri = {self.uri}: MLflow failed while {what}: {first}; check "
                                "that the server runs and registry.tracking_uri points at it") from None

    @staticmethod
    def missing(e: Exception) -> bool:
        return getattr(e, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"

    def experiment_id(self) -> str:
        """The experiment's id, creating the experiment on first use."""
        from mlflow.exceptions import MlflowException

        if self._experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                try:
                    self.client.create_experiment(self.experiment)
                except MlflowException as e:  # another machine created it first
                    if getattr(e, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                        raise
                exp = self.client.get_experiment_by_name(self.experiment)
            if exp.lifecycle_stage != "active":
                raise TunegateError(f"MLflow experiment {self.experiment!r} at {self.uri} is deleted; restore it, or "
                                    "set registry.experiment to another name")
            self._experiment_id = exp.experiment_id
        return self._experiment_id

    def search(self, filter_string: str) -> list:
        """Every MLflow run of the experiment matching the filter, all pages."""
        found, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id()], filter_string=filter_string, max_results=1000,
                                           page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def find_run(self, run_id: str):
        """The MLflow run of tunegate run `run_id`, or None."""
        if not SAFE_ID.match(run_id):
            return None
        runs = self.search(f"tags.`{RUN_TAG}` = '{run_id}'")
        return min(runs, key=lambda r: r.info.start_time) if runs else None

    def run_for(self, run_id: str, start_ms: int | None = None) -> str:
        """The MLflow run id of tunegate run `run_id`, creating the run on first use."""
        found = self.find_run(run_id)
        if found is not None:
            return found.info.run_id
        if not SAFE_ID.match(run_id):
            raise TunegateError(f"run id {run_id!r} has characters MLflow filters cannot hold; use letters, digits, "
                                "'_', '.' and '-'")
        created = self.client.create_run(self.experiment_id(), start_time=start_ms, tags={RUN_TAG: run_id},
                                         run_name=run_id)
        return created.info.run_id

    def download(self, mlflow_run: str, path: str, into: Path) -> Path:
        """Download one artifact (file or folder) of an MLflow run into the folder `into`; return its path."""
        return Path(self.client.download_artifacts(mlflow_run, path, str(into)))

    def fetch_file(self, mlflow_run: str, path: str, dest: Path) -> Path:
        """Download one artifact file to `dest`, atomically (a reader sees no half-written file)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp") as tmp:
            os.replace(self.download(mlflow_run, path, Path(tmp)), dest)
        return dest


def task_model_name(model_name: str, task: str) -> str:
    return f"{model_name}-{task}"


class MlflowRegistry:
    """The registry's methods (harness/registry.py's Registry) on an MLflow model registry, for one task.

    Each task has its own registered model, tagged with the task: the first task on the server keeps
    `registry.model_name` (a model from before tasks, untagged, is claimed by the first task that opens
    it: the one project that used it then), any other task gets `<model_name>-<task>`."""

    def __init__(self, store: MlflowStore, task: str = "default"):
        self.store = store
        self.client = store.client
        self.task = task
        self.adapters = store.cache / "adapters"
        self._name: str | None = None  # settled once the task's model is known to exist (or the shared name taken)

    @classmethod
    def connect(cls, config: RegistryConfig, workspace: Path, task: str = "default") -> "MlflowRegistry":
        return cls(MlflowStore(config, workspace), task)

    @property
    def name(self) -> str:
        """The task's registered model: looked up until it exists, since another task may take the shared name."""
        if self._name is None:
            with self.store.errors("finding the task's registered model"):
                name, settled = self._model_name()
            if not settled:
                return name
            self._name = name
        return self._name

    def _model_name(self) -> tuple[str, bool]:
        """(the task's model name, whether that is settled)."""
        from mlflow.exceptions import MlflowException

        shared = self.store.model_name
        try:
            model = self.client.get_registered_model(shared)
        except MlflowException as e:
            if not self.store.missing(e):
                raise
            return shared, False  # nobody's yet: this task's first promotion creates it
        owner = model.tags.get(TASK_TAG)
        if owner is None:
            self.client.set_registered_model_tag(shared, TASK_TAG, self.task)
            owner = self.client.get_registered_model(shared).tags.get(TASK_TAG)  # another machine may claim first
        return (shared if owner == self.task else task_model_name(shared, self.task)), True

    # ---- reading ---------------------------------------------------------------------------
    def _registered(self):
        """The registered model (its tags hold the events, its aliases the champion), or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(self.name)
        except MlflowException as e:
            if self.store.missing(e):
                return None
            raise

    def _model_versions(self) -> dict[str, object]:
        """adapter id -> its MLflow model version (the first, should two machines have registered it at once)."""
        found: dict[str, object] = {}
        if self._registered() is None:
            return found
        for mv in self.client.search_model_versions(f"name = '{self.name}'"):
            aid = mv.tags.get(TAG + "adapter_id")
            if aid and (aid not in found or int(mv.version) < int(found[aid].version)):
                found[aid] = mv
        return found

    def _version(self, mv) -> Version:
        t = {k[len(TAG):]: v for k, v in mv.tags.items() if k.startswith(TAG)}
        if not SAFE_ID.match(t["adapter_id"]):
            raise TunegateError(f"MLflow model {self.name} version {mv.version}: adapter id {t['adapter_id']!r} is "
                                "not one tunegate makes; remove that version")
        return Version(t["adapter_id"], t["fingerprint"], self.adapters / t["adapter_id"], t["run_id"],
                       t["created_at"], t["base_fingerprint"], t["config_hash"], json.loads(t["data"]),
                       json.loads(t["metrics"]), json.loads(t["gates"]))

    def versions(self) -> list[Version]:
        with self.store.errors("listing the registered versions"):
            versions = [self._version(mv) for mv in self._model_versions().values()]
        return sorted(versions, key=lambda v: (v.created_at, v.adapter_id))

    def version(self, adapter_id: str) -> Version | None:
        with self.store.errors("reading a registered version"):
            mv = self._model_versions().get(adapter_id)
            return self._version(mv) if mv is not None else None

    def events(self) -> list[dict]:
        with self.store.errors("reading the registry's events"):
            model = self._registered()
        if model is None:
            return []
        keys = sorted(k for k in model.tags if k.startswith(EVENT_PREFIX))
        return [json.loads(model.tags[k]) for k in keys]

    def lineage(self) -> list[str]:
        """The champions in order, oldest first, as the events leave them."""
        return replay(self.events())

    def champion(self) -> Version | None:
        """The version the alias `champion` names, or None before the first promotion. Its files are
        downloaded into the workspace (once, atomically) and checked against its fingerprint, so the
        engine can load it from `path`."""
        with self.store.errors("reading the champion"):
            model = self._registered()
            if model is None or ALIAS not in model.aliases:
                return None
            mv = self.client.get_model_version(self.name, model.aliases[ALIAS])
            if TAG + "adapter_id" not in mv.tags:
                raise TunegateError(f"MLflow model {self.name} version {mv.version} (alias '{ALIAS}') was not "
                                    "registered by tunegate; point the alias at a tunegate version, or `tunegate "
                                    "rollback`")
            version = self._version(mv)
            self._materialise(version, mv.run_id, mv.version)
        return version

    def _materialise(self, v: Version, mlflow_run: str, number: str) -> None:
        """Make `v.path` a verified copy of the registered files, downloading them when it is not."""
        if adapter_intact(v.path, v.fingerprint):
            return
        with atomic.one_builder(v.path, f"champion {v.adapter_id}"):
            if adapter_intact(v.path, v.fingerprint):
                return  # another process fetched it while this one waited
            with atomic.build_dir(v.path, replace=v.path.exists()) as tmp:
                got = self.store.download(mlflow_run, ADAPTER_ARTIFACT, tmp)
                for item in got.iterdir():
                    os.replace(item, tmp / item.name)
                got.rmdir()
                if not adapter_intact(tmp, v.fingerprint):
                    raise TunegateError(
                        f"registry: the champion {v.adapter_id} (MLflow model {self.name} version {number}) is missing "
                        "files or does not match its fingerprint on the server; register it again, or `tunegate "
                        "rollback` to the previous champion")

    # ---- changing ----------------------------------------------------------------------------
    def promote(self, *, adapter_id: str, fingerprint: str, source: Path, run_id: str, base_fingerprint: str,
                config_hash: str, data: dict, metrics: dict, gates: list, reason: str,
                action: str = "promote") -> Version:
        """Register the adapter (once: its files, then the version) and make it the champion. `action` is
        `promote` for a run whose gates all passed, `manual-promote` for a person's decision."""
        if action not in PROMOTIONS:
            raise ValueError(f"unknown promotion action {action!r}")
        with self.store.errors(f"promoting {adapter_id}"):
            if adapter_id not in self._model_versions():
                if not adapter_intact(source, fingerprint):
                    raise TunegateError(f"{source}: the adapter {adapter_id} is missing files or does not match its "
                                        "fingerprint; not registering it")
                mlflow_run = self.store.run_for(run_id)
                # The version exists only once every file is uploaded: a reader never finds a partial one.
                for item in sorted(Path(source).iterdir()):
                    if item.is_file():
                        self.client.log_artifact(mlflow_run, str(item), ADAPTER_ARTIFACT)
                self._ensure_model()
                tags = {"adapter_id": adapter_id, "fingerprint": fingerprint, "run_id": run_id,
                        "created_at": _now(), "base_fingerprint": base_fingerprint, "config_hash": config_hash,
                        "data": json.dumps(data), "metrics": json.dumps(metrics), "gates": json.dumps(gates)}
                self.client.create_model_version(
                    self.name, source=f"runs:/{mlflow_run}/{ADAPTER_ARTIFACT}", run_id=mlflow_run,
                    tags={TAG + k: v for k, v in tags.items()}, await_creation_for=0)
                self._keep_copy(adapter_id, fingerprint, Path(source))
            self._event(action, adapter_id, run_id, reason)
        return self.champion()

    def rollback(self, reason: str) -> tuple[Version, Version]:
        """Make the champion before the current one the champion again; return (old, new).

        Raises TunegateError, changing nothing, when there is no earlier champion to return to."""
        stack = self.lineage()
        if len(stack) < 2:
            raise nothing_to_roll_back(stack)
        old, new = stack[-1], stack[-2]
        with self.store.errors("rolling back"):
            run_id = self._registered_version(new).tags[TAG + "run_id"]
            self._event(ROLLBACK, new, run_id, f"{reason} (replaces {old})")
        return self.version(old), self.champion()

    def _registered_version(self, adapter_id: str):
        """The model version of an adapter the events name; one deleted on the server is a one-line error."""
        mv = self._model_versions().get(adapter_id)
        if mv is None:
            raise TunegateError(f"MLflow model {self.name} has no version of {adapter_id} (deleted on the server?); "
                                "register it again with `tunegate promote RUN_ID`")
        return mv

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        if self._registered() is None:
            try:
                self.client.create_registered_model(
                    self.name, tags={TASK_TAG: self.task},
                    description=f"LoRA adapters of task {self.task} promoted by tunegate; alias 'champion': the "
                    "current one")
            except MlflowException as e:  # another machine created it first
                if getattr(e, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
                    raise
            self._name = None
            if self._registered() is None:  # the shared name went to another task first: create this task's own
                self._ensure_model()

    def _keep_copy(self, adapter_id: str, fingerprint: str, source: Path) -> None:
        """Copy a just-registered adapter into the workspace's cache, so this machine need not download it."""
        final = self.adapters / adapter_id
        if adapter_intact(final, fingerprint):
            return
        with atomic.one_builder(final, f"registered adapter {adapter_id}"):
            with atomic.build_dir(final, replace=final.exists()) as tmp:
                for item in source.iterdir():
                    if item.is_file():
                        shutil.copy2(item, tmp / item.name)

    def _event(self, action: str, adapter_id: str, run_id: str | None, reason: str) -> None:
        """Add one champion change to the log, then point the alias at the champion the log leaves."""
        key = f"{EVENT_PREFIX}{time.time_ns():020d}.{secrets.token_hex(3)}"
        event = {"at": _now(), "action": action, "adapter_id": adapter_id, "run_id": run_id,
                 "reason": reason[:MAX_REASON]}
        self.client.set_registered_model_tag(self.name, key, json.dumps(event))
        stack = self.lineage()
        if stack:
            self.client.set_registered_model_alias(self.name, ALIAS, self._registered_version(stack[-1]).version)

    def close(self) -> None:
        """Nothing to release: the client holds no open connection between calls."""
