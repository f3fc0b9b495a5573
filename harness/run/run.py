"""One evaluation run, assembled from its parts: inputs, workspace, candidate, engine, the suites'
evaluations, the verdict, promotion and the written results. The pytest plugin keeps one Run in
`config.stash`; the CLI and `python -m harness.run.launch` use it too, without pytest."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from harness.curation import card
from harness.curation.checks import CheckReport, check_run
from harness.engine.adapter_check import check_adapter
from harness.engine.models import (
    BUNDLED,
    BaseModelRef,
    bundled_gguf,
    describe,
    linear_shapes,
    load_tokenizer_only,
    model_config,
    resolve_base,
)
from harness.errors import TunegateError
from harness.run import results as run_results
from harness.run.candidate import StoredAdapter, get_candidate, open_external
from harness.run.engines import build_engine
from harness.run.evaluation import Evaluator, unavailable
from harness.run.inputs import RunInputs
from harness.run.verdict import Verdict, decide
from harness.run.workspace import check_champion, check_stores
from harness.store import results as results_io
from harness.store.backends import open_history, open_registry
from harness.store.registry import Registry


def new_run_id() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Run:
    def __init__(self, config_path: Path, *, retrain: bool = False, adapter_path: Path | None = None):
        self.inputs = RunInputs(config_path)
        self.retrain = retrain
        self.adapter_path = adapter_path
        self.run_id = new_run_id()
        self.started_at = run_results.now()
        self.evaluator = Evaluator(self.inputs, self._build_engine, lambda: self.champion is not None)
        self._adapter: StoredAdapter | None = None
        self.results_path: Path | None = None
        self.results: dict | None = None  # results.json's content, once finish() has written it
        self.report_paths = None  # harness.report.Written, once finish() has rendered them

    @property
    def config(self):
        return self.inputs.config

    @property
    def workspace(self) -> Path:
        return self.inputs.workspace

    # ---- before anything trains -----------------------------------------------------------
    def validate_inputs(self) -> None:
        """Load and check everything a run needs; raise TunegateError on the first problem."""
        backend = self.config.engine.backend
        if self.config.training.finetune == "full" and backend != "local":
            # A remote or vLLM engine serves the base model and swaps LoRA adapters on it; a whole model
            # folder would fail there mid-run, after training.
            raise TunegateError(
                f"training.finetune = 'full' trains a whole model, which engine.backend = '{backend}' cannot load "
                "as an adapter; evaluate it with engine.backend = 'local', or train a LoRA adapter")
        self.inputs.validate()
        m = self.config.model
        if m.base == BUNDLED:
            bundled_gguf()  # the package is there; conversion waits until a model is needed
        elif Path(self.base.source).is_dir():  # a local folder is checked (and fingerprinted) now
            model_config(self.base, m.trust_remote_code)  # its config loads without running its code
        if self.adapter_path is not None:
            open_external(self.adapter_path, m.allow_pickle)
            # The shapes an adapter from elsewhere must fit (None for a hub id that cannot be reached).
            check_adapter(self.adapter_path, linear_shapes(self.base, m.trust_remote_code), m.allow_pickle)
        check_stores(self.workspace)
        if self.config.registry.backend == "mlflow" or Registry.exists_in(self.workspace):
            check_champion(self.champion)  # (the MLflow registry is checked, and its champion fetched, every run)

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
    def champion(self):
        return self.registry.champion()

    @cached_property
    def data_check(self) -> CheckReport:
        """`tunegate data check` over this run's data; its card goes into results.json and the report."""
        m = self.config.model
        return check_run(self.inputs, load_tokenizer_only(m.base, self.workspace, m.revision, m.trust_remote_code))

    def adapter(self) -> StoredAdapter:
        """The candidate: --adapter PATH, the stored adapter for these inputs, or one trained now."""
        if self._adapter is None:
            self._adapter = get_candidate(
                self.config, self.base, self.workspace, self.inputs.splits, self.inputs.data_hashes,
                self.inputs.leakage_sets(), self.data_check, adapter_path=self.adapter_path, retrain=self.retrain)
        return self._adapter

    def _build_engine(self):
        return build_engine(self.config, self.base, self.workspace, self.adapter(), self.champion)

    # ---- the end --------------------------------------------------------------------------
    def decide(self, pytest_status: int, complete: bool, aborted: str = "") -> Verdict:
        return decide(self.evaluator.gates, self.inputs.expected_gates(), self._adapter.id if self._adapter else None,
                      pytest_status=pytest_status, complete=complete, aborted=aborted)

    def promote(self) -> None:
        a, gates = self._adapter, self.evaluator.gates
        self.registry.promote(
            adapter_id=a.id, fingerprint=a.fingerprint, source=a.path, run_id=self.run_id,
            base_fingerprint=self.base.fingerprint, config_hash=self.inputs.config_hash,
            data=self.inputs.data_hashes, metrics=self.evaluator.metrics(),
            gates=[g.as_dict() for g in gates.values()], reason="all gates passed",
        )

    def finish(self, pytest_status: int, complete: bool, aborted: str = "") -> Verdict:
        """Decide, promote when earned, write results.json, record the run in the history store
        (promoted or not), then render the HTML report and the Markdown summary from them."""
        from harness.report import write_reports  # matplotlib loads only when a run finishes, not per pytest run

        verdict = self.decide(pytest_status, complete, aborted)
        if verdict.status == "PROMOTED":
            self.promote()
        results = self.results = self.build_results(verdict, complete)
        self.results_path = results_io.write(self.config.path(self.config.workspace.reports), self.run_id, results)
        history = open_history(self.config, self.workspace)
        try:
            history.record(results, self.results_path)
            self.report_paths = write_reports(results, self.results_path.parent, history)
        finally:
            history.close()
        return verdict

    def coverage(self) -> dict:
        """Which failure modes this run checked and which it did not, and why (results.json `coverage`)."""
        checked, off = [], []
        off_suites = self.inputs.off_suites()
        for name, (suite, settings) in self.inputs.known_suites.items():
            entry = {"suite": name, "failure_mode": suite.failure_mode}
            reason = off_suites.get(name) or unavailable(self.config, name, suite.needs_logprobs)
            if reason:
                off.append({**entry, "reason": reason})
                continue
            try:
                gates_off = self.inputs.gates_off(name)  # by its settings, and for want of the task's data
            except TunegateError:  # data this run already stopped on: what the settings alone say
                gates_off = suite.gates_off(settings)
            checked.append({**entry, "gates": [suite.gate_name(g) for g in suite.gates if g not in gates_off],
                            "gates_off": {suite.gate_name(g): why for g, why in gates_off.items()},
                            "evaluated": name in self.evaluator.evaluations})
        return {"checked": checked, "off": off}

    def movers(self) -> dict[str, list[dict]]:
        """Under each failed gate, the items that moved it most (the suite's `movers`)."""
        out = {}
        for full, gate in self.evaluator.gates.items():
            evaluation = self.evaluator.evaluations.get(gate.suite)
            if gate.passed is not False or evaluation is None:
                continue
            suite, settings = self.inputs.suite(gate.suite)
            out[full] = [m.as_dict() for m in suite.movers(full.removeprefix(f"{gate.suite}."), settings, evaluation)]
        return out

    def build_results(self, verdict: Verdict, complete: bool) -> dict:
        resolved = self.__dict__  # what this run got as far as computing (a run may end before training)
        engine = self.evaluator.started_engine
        return run_results.build(
            run_id=self.run_id, started_at=self.started_at, root=self.config.root, verdict=verdict,
            complete=complete,
            base_model=describe(self.base) if "base" in resolved else {"source": self.config.model.base,
                                                                       "fingerprint": "unresolved"},
            candidate=self._adapter, champion=self.champion if "champion" in resolved else None,
            config_hash=self.inputs.config_hash, data=self.inputs.data_hashes, suites=self.evaluator.metrics(),
            gates=[g.as_dict() for g in self.evaluator.gates.values()], examples=self.evaluator.records(),
            engine=vars(engine.stats) if engine else {},
            data_card=card.build(self.data_check) if "data_check" in resolved else None,
            task={"name": self.config.task_name, "description": self.config.task.description},
            coverage=self.coverage(), movers=self.movers(),
        )
