"""One evaluation run: config, data, the candidate adapter, the engine, gate results and the verdict.

The pytest plugin keeps one RunSession in `config.stash` and calls these plain methods; they
are usable (and tested) without pytest.
"""
from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from harness import results as results_io, sqlite_store
from harness.adapter_check import check_adapter
from harness.cache import CACHE_FILE, ResultCache
from harness.config import Config, load_config
from harness.curation import card
from harness.curation.checks import CheckReport, check_run
from harness.data import Example, check_leakage, load_jsonl, split_train_val
from harness.engine import BASE, Engine
from harness.errors import TunegateError
from harness.fingerprints import adapter_intact, file_sha256, json_sha256
from harness.gates import GateResult
from harness.history import HISTORY_FILE, open_history
from harness.models import (
    BUNDLED,
    BaseModelRef,
    bundled_gguf,
    describe,
    linear_shapes,
    load_model,
    load_tokenizer,
    load_tokenizer_only,
    model_config,
    resolve_base,
)
from harness.registry import Registry, open_registry
from harness.suites import SUITES
from training.store import get_or_train, open_external, training_data

CANDIDATE, CHAMPION = "candidate", "champion"


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def refuse_to_train(check: CheckReport) -> None:
    """Raise, in one line, when the data check found errors: training on them is what it exists to stop."""
    errors = check.errors
    if errors:
        kinds = ", ".join(sorted({e.kind for e in errors}))
        raise TunegateError(f"data check: {len(errors)} errors ({kinds}), not training; first: {errors[0].line()}; "
                            "`tunegate data check` lists them all")


@dataclass
class Verdict:
    status: str  # PROMOTED | BLOCKED | NOT PROMOTED
    failed_gates: list[str] = field(default_factory=list)
    promoted_adapter: str | None = None
    reason: str = ""

    @property
    def line(self) -> str:
        if self.status == "PROMOTED":
            return f"tunegate: PROMOTED {self.promoted_adapter}"
        if self.status == "BLOCKED":
            return f"tunegate: BLOCKED: {', '.join(self.failed_gates) or self.reason}"
        return f"tunegate: NOT PROMOTED: {self.reason}"


class RunSession:
    def __init__(self, config_path: Path, *, retrain: bool = False, adapter_path: Path | None = None):
        self.config_path = Path(config_path)
        self.retrain = retrain
        self.adapter_path = adapter_path
        self.run_id = new_run_id()
        self.started_at = _now()
        self.gates: dict[str, GateResult] = {}
        self.records: list[dict] = []
        self.suite_metrics: dict[str, dict] = {}
        self._engine: Engine | None = None
        self._adapter = None
        self._items: dict[str, dict[str, list]] = {}
        self._outcomes: dict[str, object] = {}
        self.results_path: Path | None = None
        self.report_paths = None  # harness.report.Written, once finish() has rendered them

    # ---- inputs (validated before anything trains) ----------------------------------------
    @cached_property
    def config(self) -> Config:
        return load_config(self.config_path)

    @cached_property
    def workspace(self) -> Path:
        return self.config.path(self.config.workspace.dir)

    @cached_property
    def splits(self) -> tuple[list[Example], list[Example]]:
        data = self.config.data
        train = load_jsonl(self.config.path(data.train))
        if data.val is not None:
            return train, load_jsonl(self.config.path(data.val))
        return split_train_val(train, data.val_fraction, self.config.training.seed)

    def suite_items(self, suite: str) -> dict[str, list]:
        """A suite's items per test parameter, loaded and validated once."""
        if suite not in self._items:
            self._items[suite] = SUITES[suite].items(self)
        return self._items[suite]

    def enabled_suites(self) -> list[str]:
        return [name for name, suite in SUITES.items() if suite.enabled(self.config)]

    def unavailable(self, suite: str) -> str | None:
        """Why the engine cannot run an enabled suite (a server without log-probabilities), else None. Its
        tests skip with this reason, and its gates are missing, so the run cannot promote until the suite
        is disabled: leaving out a gate is the user's decision, never the engine's."""
        e = self.config.engine
        if getattr(SUITES[suite], "NEEDS_LOGPROBS", False) and e.backend == "openai" and (
                e.openai.api != "completions" or not e.openai.logprobs):
            return (f"suite '{suite}' is scored by log-likelihood, and engine.openai (api = '{e.openai.api}', "
                    f"logprobs = {str(e.openai.logprobs).lower()}) gives no log-probabilities; serve the model where "
                    f"it can, or set suites.{suite}.enabled = false to gate without it")
        return None

    def leakage_sets(self, skip: frozenset[Path] = frozenset()) -> dict[str, list[Example]]:
        """Each enabled suite's items that must not appear in the training data, except suites that read
        a file in `skip` (resolved paths: files the data check reads as files of its own)."""
        sets = {}
        for name in self.enabled_suites():
            paths = {self.config.path(p).resolve() for p in SUITES[name].data_paths(self.config).values()}
            if not paths & skip:
                sets[name] = SUITES[name].leakage_examples(self)
        return sets

    def validate_inputs(self) -> None:
        """Load and check everything a run needs; raise TunegateError on the first problem."""
        backend = self.config.engine.backend
        if self.config.training.finetune == "full" and backend != "local":
            # A remote or vLLM engine serves the base model and swaps LoRA adapters on it; a whole model
            # folder would fail there mid-run, after training.
            raise TunegateError(
                f"training.finetune = 'full' trains a whole model, which engine.backend = '{backend}' cannot load "
                "as an adapter; evaluate it with engine.backend = 'local', or train a LoRA adapter")
        train, val = self.splits
        for name in self.enabled_suites():
            self.suite_items(name)
        check_leakage(train, [val, *self.leakage_sets().values()])
        m = self.config.model
        if m.base == BUNDLED:
            bundled_gguf()  # the package is there; conversion waits until a model is needed
        elif Path(self.base.source).is_dir():  # a local folder is checked (and fingerprinted) now
            model_config(self.base, m.trust_remote_code)  # its config loads without running its code
        if self.adapter_path is not None:
            open_external(self.adapter_path, m.allow_pickle)
            # The shapes an adapter from elsewhere must fit (None for a hub id that cannot be reached).
            check_adapter(self.adapter_path, linear_shapes(self.base, m.trust_remote_code), m.allow_pickle)
        self.check_workspace()

    def check_workspace(self) -> None:
        """Open the workspace's stores that exist, so a damaged one is a one-line error now rather than
        mid-run, and refuse a champion whose stored files changed since it was promoted. Nothing is
        created: a first run's workspace appears only once it has something to hold."""
        for path in (self.workspace / CACHE_FILE, self.workspace / HISTORY_FILE, Registry.db_in(self.workspace)):
            if path.is_file():
                sqlite_store.check(path)
        if self.config.registry.backend == "sqlite" and not Registry.exists_in(self.workspace):
            return  # (the MLflow registry is checked, and its champion fetched, on every run)
        champ = self.champion
        if champ is not None and not adapter_intact(champ.path, champ.fingerprint):
            raise TunegateError(
                f"registry: the champion {champ.adapter_id} in {champ.path} is missing files or does not match its "
                "fingerprint; restore that folder, or `tunegate rollback` to the previous champion")

    @cached_property
    def data_hashes(self) -> dict[str, str]:
        data = self.config.data
        suites = {k: p for s in self.enabled_suites() for k, p in SUITES[s].data_paths(self.config).items()}
        paths = {"train": data.train, "val": data.val, **suites}
        return {k: file_sha256(self.config.path(p)) for k, p in paths.items() if p is not None}

    @cached_property
    def config_hash(self) -> str:
        return json_sha256(self.config.model_dump(mode="json"))

    # ---- models ---------------------------------------------------------------------------
    @cached_property
    def base(self) -> BaseModelRef:
        m = self.config.model
        return resolve_base(m.base, self.workspace, m.revision, m.allow_pickle)

    @cached_property
    def registry(self):
        """The registry [registry] selects (Registry, or the shared MlflowRegistry)."""
        return open_registry(self.config, self.workspace)

    @cached_property
    def data_check(self) -> CheckReport:
        """`tunegate data check` over this run's data: the train, val and golden files, and leakage into
        every enabled suite. Its card goes into results.json and the report."""
        m = self.config.model
        return check_run(self, load_tokenizer_only(m.base, self.workspace, m.revision, m.trust_remote_code))

    def adapter(self):
        """The candidate: --adapter PATH, else the stored adapter for these inputs, else train it (never
        on data the data check finds errors in; an adapter trained elsewhere is only described by it)."""
        if self._adapter is None:
            check = self.data_check  # every run's: its card goes into the results
            if self.adapter_path is not None:
                self._adapter = open_external(self.adapter_path, self.config.model.allow_pickle)
            else:
                refuse_to_train(check)
                train, val = self.splits
                hashes = self.data_hashes
                if self.config.training.method == "dpo":  # preference pairs take the examples' place
                    from training.dpo import preference_data

                    train, val, hashes = preference_data(self.config, self.leakage_sets(), hashes)
                self._adapter = get_or_train(
                    self.workspace / "adapters", self.base, train, val, self.config.training,
                    self.config.data.system_prompt, hashes, retrain=self.retrain,
                    trust_remote_code=self.config.model.trust_remote_code,
                )
        return self._adapter

    def engine(self) -> Engine:
        """One base model in memory with the candidate (and champion, if any) as switchable adapters."""
        if self._engine is None:
            candidate = self.adapter()
            m, e = self.config.model, self.config.engine
            tokenizer = load_tokenizer(self.base, m.trust_remote_code)
            cache = ResultCache(self.workspace / CACHE_FILE)
            if e.backend == "openai":
                from harness.remote_engine import RemoteEngine

                self._engine = RemoteEngine(e.openai, tokenizer, self.base, cache)
            elif e.backend == "vllm":
                from harness.vllm_engine import VLLMEngine

                self._engine = VLLMEngine(e.vllm, tokenizer, self.base, cache, m.dtype, m.trust_remote_code)
            else:
                self._engine = Engine(None, tokenizer, self.base, cache, e.batch_size, e.max_batch_tokens,
                                      dtype=m.dtype, load=lambda dtype: load_model(self.base, dtype, m.trust_remote_code))
            self._engine.add_adapter(CANDIDATE, candidate.path, candidate.fingerprint)
            champ = self.champion
            if champ is not None and champ.fingerprint != candidate.fingerprint:
                self._engine.add_adapter(CHAMPION, champ.path, champ.fingerprint)
        return self._engine

    @cached_property
    def champion(self):
        return self.registry.champion()

    def roles(self) -> dict[str, str]:
        """Role name -> engine role. A champion identical to the candidate reuses its outputs."""
        roles = {BASE: BASE, CANDIDATE: CANDIDATE}
        if self.champion is not None:
            engine = self.engine()
            roles[CHAMPION] = CHAMPION if CHAMPION in engine.adapters else CANDIDATE
        return roles

    def generate_all(self, prompts: list[list[dict]], max_new_tokens: int) -> dict[str, list[str]]:
        """Greedy answers to the same prompts from every role."""
        engine = self.engine()
        return {role: engine.generate(r, prompts, max_new_tokens) for role, r in self.roles().items()}

    def loglikelihood_all(self, pairs: list[tuple[str, str]], dtype: str | None = None) -> dict[str, list[float]]:
        """Log-likelihoods of the same (context, continuation) pairs under every role (in `dtype`, if
        given, else the model's)."""
        engine = self.engine()
        return {role: [ll for ll, _ in engine.loglikelihood(r, pairs, dtype)] for role, r in self.roles().items()}

    def outcome(self, suite: str):
        """The suite's evaluation, run once per session."""
        if suite not in self._outcomes:
            self._outcomes[suite] = SUITES[suite].evaluate(self)
        return self._outcomes[suite]

    # ---- results --------------------------------------------------------------------------
    def record_gate(self, gate: GateResult) -> GateResult:
        self.gates[gate.name] = gate
        return gate

    def expected_gates(self) -> set[str]:
        return {f"{s}.{g}" for s in self.enabled_suites() for g in SUITES[s].GATES}

    def decide(self, pytest_status: int, complete: bool, aborted: str = "") -> Verdict:
        """The verdict: every expected gate held, nothing else failed, and the run was complete."""
        failed = [name for name, g in self.gates.items() if g.passed is False]
        missing = sorted(self.expected_gates() - set(self.gates))
        if failed:
            return Verdict("BLOCKED", failed_gates=failed)
        if aborted:
            return Verdict("BLOCKED", reason=aborted)
        if pytest_status != 0:
            return Verdict("BLOCKED", reason=f"tests failed or errored (pytest exit status {pytest_status})")
        if not complete or missing:
            why = "partial run (-k, -m or a narrowed path)" if not complete else f"gates not run: {', '.join(missing)}"
            return Verdict("NOT PROMOTED", reason=f"{why}; only a full run of every gating suite can promote")
        return Verdict("PROMOTED", promoted_adapter=self._adapter.id if self._adapter else None)

    def promote(self, verdict: Verdict) -> None:
        a = self._adapter
        self.registry.promote(
            adapter_id=a.id, fingerprint=a.fingerprint, source=a.path, run_id=self.run_id,
            base_fingerprint=self.base.fingerprint, config_hash=self.config_hash, data=self.data_hashes,
            metrics=self.suite_metrics, gates=[g.as_dict() for g in self.gates.values()],
            reason="all gates passed",
        )

    def finish(self, pytest_status: int, complete: bool, aborted: str = "") -> Verdict:
        """Decide, promote when earned, write results.json, record the run in the history store
        (promoted or not), then render the HTML report and the Markdown summary from them."""
        from harness.report import write_reports  # matplotlib loads only when a run finishes

        verdict = self.decide(pytest_status, complete, aborted)
        if verdict.status == "PROMOTED":
            self.promote(verdict)
        results = self.build_results(verdict, complete)
        self.results_path = results_io.write(self.config.path(self.config.workspace.reports), self.run_id, results)
        history = open_history(self.config, self.workspace)
        try:
            history.record(results, self.results_path)
            self.report_paths = write_reports(results, self.results_path.parent, history)
        finally:
            history.close()
        return verdict

    def build_results(self, verdict: Verdict, complete: bool) -> dict:
        """The run's results.json content (schema: harness/schemas/results.schema.json)."""
        a = self._adapter
        champ = self.champion if "champion" in self.__dict__ else None
        results = {
            "schema_version": results_io.SCHEMA_VERSION,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": _now(),
            "git_commit": _git_commit(self.config.root),
            "verdict": {"status": verdict.status, "line": verdict.line, "failed_gates": verdict.failed_gates,
                        "promoted_adapter": verdict.promoted_adapter},
            "complete": complete,
            "base_model": describe(self.base) if "base" in self.__dict__ else {"source": self.config.model.base,
                                                                                "fingerprint": "unresolved"},
            # Each adapter's own training data, as its tunegate.json recorded it when it was trained (None
            # for one trained elsewhere): `data` below is this run's, which a reused or external adapter may predate.
            "candidate": {"id": a.id, "fingerprint": a.fingerprint, "path": str(a.path), "trained_now": a.trained_now,
                          "data": a.metadata.get("data")} if a else None,
            "champion": {"id": champ.adapter_id, "fingerprint": champ.fingerprint, "path": str(champ.path),
                         "data": training_data(champ.path)} if champ else None,
            "config_hash": self.config_hash,
            "data": self.data_hashes,
            "training": {k: a.metadata.get(k) for k in ("loss_history", "best_val_loss", "steps", "train_seconds")}
            if a and a.metadata else None,
            "suites": self.suite_metrics,
            "gates": [g.as_dict() for g in self.gates.values()],
            "examples": self.records,
            "engine": vars(self._engine.stats) if self._engine else {},
            "data_card": card.build(self.data_check) if "data_check" in self.__dict__ else None,
        }
        return results
