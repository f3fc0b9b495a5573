"""Evaluating the suites: the RunView suites see (every role answers the same items through one
engine), each suite's evaluation run once, and the gates computed from it."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.config import Config
from harness.data.examples import Example
from harness.errors import TunegateError
from harness.gating.gates import GateResult
from harness.roles import BASE, CANDIDATE, CHAMPION
from harness.run.inputs import RunInputs
from harness.suites.api import Evaluation, ItemCheck


def unavailable(config: Config, suite_name: str, needs_logprobs: bool) -> str | None:
    """Why the engine cannot run an enabled suite (a server without log-probabilities), else None. Its
    tests skip with this reason, and its gates are missing, so the run cannot promote until the suite
    is disabled: leaving out a gate is the user's decision, never the engine's."""
    e = config.engine
    if needs_logprobs and e.backend == "openai" and (e.openai.api != "completions" or not e.openai.logprobs):
        return (f"suite '{suite_name}' is scored by log-likelihood, and engine.openai (api = '{e.openai.api}', "
                f"logprobs = {str(e.openai.logprobs).lower()}) gives no log-probabilities; serve the model where "
                f"it can, or set suites.{suite_name}.enabled = false to gate without it")
    return None


class Evaluator:
    """The RunView of one run. `engine` is called once, when a suite first needs a model."""

    def __init__(self, inputs: RunInputs, engine: Callable[[], object], has_champion: Callable[[], bool]):
        self.inputs = inputs
        self._engine_factory = engine
        self._has_champion = has_champion
        self._engine = None
        self.evaluations: dict[str, Evaluation] = {}
        self.gates: dict[str, GateResult] = {}

    # ---- RunView --------------------------------------------------------------------------
    @property
    def config(self) -> Config:
        return self.inputs.config

    @property
    def workspace(self) -> Path:
        return self.inputs.workspace

    def path(self, p: Path) -> Path:
        return self.inputs.path(p)

    def train_examples(self) -> list[Example]:
        return self.inputs.train_examples()

    def items(self, suite: str) -> dict[str, list]:
        return self.inputs.items(suite)

    @property
    def engine(self):
        if self._engine is None:
            self._engine = self._engine_factory()
        return self._engine

    @property
    def started_engine(self):
        """The engine if a suite has needed it, else None (its statistics go into the results)."""
        return self._engine

    def roles(self) -> dict[str, str]:
        """Role name -> engine role. A champion identical to the candidate reuses its outputs."""
        roles = {BASE: BASE, CANDIDATE: CANDIDATE}
        if self._has_champion():
            roles[CHAMPION] = CHAMPION if CHAMPION in self.engine.adapters else CANDIDATE
        return roles

    def _roles(self, only: tuple[str, ...] | None) -> dict[str, str]:
        return {r: e for r, e in self.roles().items() if only is None or r in only}

    def generate(self, prompts, max_new_tokens, *, roles=None) -> dict[str, list[str]]:
        return {role: self.engine.generate(r, prompts, max_new_tokens) for role, r in self._roles(roles).items()}

    def sample(self, prompts, k, max_new_tokens, *, temperature, top_p, seed) -> dict[str, list[list[str]]]:
        return {role: self.engine.sample(r, prompts, k, max_new_tokens, temperature=temperature, top_p=top_p,
                                         seed=seed) for role, r in self.roles().items()}

    def loglikelihood(self, pairs, dtype=None) -> dict[str, list[float]]:
        return {role: [ll for ll, _ in self.engine.loglikelihood(r, pairs, dtype)] for role, r in self.roles().items()}

    def evaluation(self, suite: str) -> Evaluation | None:
        """The suite's evaluation, run once per run; None for a disabled suite."""
        if suite not in self.inputs.enabled_suites():
            return None
        if suite not in self.evaluations:
            s, settings = self.inputs.suite(suite)
            got = s.evaluate(settings, self.inputs.items(suite), self)
            if not isinstance(got, Evaluation):
                raise TunegateError(f"suite {suite!r}: evaluate() returned {type(got).__name__}, not an Evaluation")
            self.evaluations[suite] = got
        return self.evaluations[suite]

    # ---- checks and gates -----------------------------------------------------------------
    def check(self, suite: str, param: str, item) -> ItemCheck:
        s, settings = self.inputs.suite(suite)
        return s.check(param, item, settings, self.evaluation(suite))

    def gate(self, suite: str, gate: str) -> GateResult:
        """Compute a gate of a suite and record it for the verdict."""
        s, settings = self.inputs.suite(suite)
        result = s.gate(gate, settings, self.evaluation(suite))
        self.gates[result.name] = result
        return result

    def records(self) -> list[dict]:
        return [r for ev in self.evaluations.values() for r in ev.records]

    def metrics(self) -> dict[str, dict]:
        return {name: ev.metrics for name, ev in self.evaluations.items()}
