"""The suite API: what a suite declares (its config table, items, evaluation, item checks and gates)
and the narrow view of the run it may use (`RunView`). Built-in suites and suites from other
packages implement the same `Suite` base class; see docs/writing-a-suite.md.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import Field

from harness.data.examples import Example
from harness.gating.gates import GateResult
from harness.roles import BASE, CANDIDATE, CHAMPION
from harness.settings import Section

if TYPE_CHECKING:
    from harness.config import Config


class SuiteSettings(Section):
    """The base of a suite's table, `[suites.<name>]`: every suite can be switched off."""

    enabled: bool = Field(True, description="Run this suite, and let its gates decide promotion.")


S = TypeVar("S", bound=SuiteSettings)
O = TypeVar("O")


@dataclass(frozen=True)
class Evaluation(Generic[O]):
    """What a suite's evaluation returns: its own typed outcome (read by its item checks and gates),
    the per-example records of every role (results.json, the report) and the metrics per role."""

    outcome: O
    records: list[dict] = field(default_factory=list)
    metrics: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemCheck:
    """The verdict on one item of a suite: `pass`, `xfail` (reported, counted by the gates) or `fail`
    (a hard failure: the run cannot promote)."""

    status: Literal["pass", "xfail", "fail"]
    message: str = ""


PASSED = ItemCheck("pass")


@dataclass(frozen=True)
class Mover:
    """One item that moved a failed gate, in words its task's owner reads: what was asked, what the
    candidate answered and what the baseline (base, or the champion for a `*_champion` gate) answered."""

    example_id: str
    question: str
    candidate: str
    baseline: str
    baseline_role: str
    why: str = ""  # the candidate's failure, or the score that dropped

    def as_dict(self) -> dict:
        return asdict(self)


MOVERS = 3  # items shown under each failed gate


def last_user_message(prompt: list[dict]) -> str:
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def gate_baseline(gate: str) -> str:
    """The role a gate compares the candidate with: the champion for `*champion*` gates, else the base."""
    return CHAMPION if "champion" in gate else BASE


def movers_from_records(records: list[dict], baseline_role: str, score: str | None = None,
                        limit: int = MOVERS) -> list[Mover]:
    """The items that moved a gate most, from a suite's records: with `score`, the biggest drop of that
    score from the baseline's to the candidate's answer; without, the items the candidate failed where the
    baseline passed (critical failures first, then the biggest drop of a score both share), and when there
    are fewer such items than `limit`, the candidate's other failures."""
    by_id: dict[str, dict[str, dict]] = {}
    for rec in records:
        by_id.setdefault(rec["example_id"], {})[rec["role"]] = rec
    pairs = [(roles[CANDIDATE], roles.get(baseline_role)) for roles in by_id.values() if CANDIDATE in roles]

    def drop(cand: dict, other: dict | None, key: str | None = None) -> float:
        if other is None:
            return 0.0
        keys = [key] if key else [k for k, v in cand["scores"].items() if isinstance(v, (int, float))
                                  and not isinstance(v, bool)]
        for k in keys:
            a, b = cand["scores"].get(k), other["scores"].get(k)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
                return float(b) - float(a)
        return 0.0

    if score is not None:
        ranked = sorted((p for p in pairs if drop(*p, score) > 0), key=lambda p: -drop(*p, score))
    else:
        lost = [p for p in pairs if not p[0]["passed"] and p[1] is not None and p[1]["passed"]]
        lost.sort(key=lambda p: (not p[0]["critical_failed"], -drop(*p)))
        shown = {id(p[0]) for p in lost}
        failed = [p for p in pairs if not p[0]["passed"] and id(p[0]) not in shown]
        failed.sort(key=lambda p: not p[0]["critical_failed"])
        ranked = lost + failed
    out = []
    for cand, other in ranked[:limit]:
        why = cand["reason"]
        if score is not None:
            why = f"{score} {other['scores'][score]} -> {cand['scores'][score]}" + (f"; {why}" if why else "")
        out.append(Mover(cand["example_id"], last_user_message(cand["prompt"]), cand["output"],
                         other["output"] if other else "", baseline_role if other else "", why))
    return out


class RunView(Protocol):
    """What a suite may use of the run: the config, its paths and the engine's roles. Every call
    answers the same items for every role, batched and through the result cache."""

    @property
    def config(self) -> Config: ...

    @property
    def workspace(self) -> Path: ...

    def path(self, p: Path) -> Path:
        """A configured path, resolved against the config's folder."""

    def train_examples(self) -> list[Example]:
        """The training split (loaded and validated; never trains)."""

    def items(self, suite: str) -> dict[str, list]:
        """Another suite's items, loaded once per run."""

    def evaluation(self, suite: str) -> Evaluation | None:
        """Another enabled suite's evaluation (run once per run), or None when it is disabled."""

    def roles(self) -> dict[str, str]:
        """Role name -> engine role (a champion identical to the candidate reuses its outputs)."""

    def generate(self, prompts: list[list[dict]], max_new_tokens: int, *,
                 roles: tuple[str, ...] | None = None) -> dict[str, list[str]]:
        """Greedy answers to the same conversations, per role (every role unless `roles` is given)."""

    def sample(self, prompts: list[list[dict]], k: int, max_new_tokens: int, *, temperature: float, top_p: float,
               seed: int) -> dict[str, list[list[str]]]:
        """`k` seeded samples per conversation, per role."""

    def loglikelihood(self, pairs: list[tuple[str, str]], dtype: str | None = None) -> dict[str, list[float]]:
        """Log-likelihood of each (context, continuation) pair, per role."""


class Suite(ABC, Generic[S, O]):
    """One evaluation suite. Subclasses set the class attributes and implement the abstract methods;
    nothing they do writes into the run: `evaluate` returns an Evaluation, `gate` a GateResult.

    The suite's pytest module (one file, marked `pytest.mark.tunegate_suite(name)`) has one test per
    name in `params`, taking that parameter and the `evaluation` fixture and calling
    `harness.plugin.check_item`, and `test_gate(gate, evaluation, tunegate_run)` calling `check_gate`.
    """

    name: ClassVar[str]
    settings: ClassVar[type[SuiteSettings]] = SuiteSettings  # its [suites.<name>] table
    params: ClassVar[tuple[str, ...]] = ()  # the pytest parameters of its per-item tests
    gates: ClassVar[tuple[str, ...]]  # its gate names; `<name>.<gate>` in results and reports
    needs_logprobs: ClassVar[bool] = False  # scored by log-likelihood: a chat-only server cannot run it
    # The silent failure of fine-tuning it catches, in a few words ("safety collapse", "forgetting", ...):
    # the report and results.json list each one as checked or off, and why.
    failure_mode: ClassVar[str] = ""

    def off_reason(self, settings: S) -> str | None:
        """Why this enabled suite cannot run with these settings (it has no data of the user's to run on,
        say), with the key that turns it on; None when it runs. An off suite is not collected, and the
        report says why."""
        return None

    def gates_off(self, settings: S) -> dict[str, str]:
        """Gates these settings switch off (an opt-in bar left unset), each with the reason and the key
        that turns it on. They are neither collected nor expected; the report lists them."""
        return {}

    def data_gates_off(self, settings: S, run: RunView) -> dict[str, str]:
        """Gates off for want of the user's data, known once the items can be read (the golden set carries
        no slice key, say), each with the reason and the fix. `RunInputs.gates_off(name)` merges them with
        `gates_off`; may raise TunegateError on bad data, like `load_items`."""
        return {}

    def active_gates(self, settings: S) -> tuple[str, ...]:
        off = self.gates_off(settings)
        return tuple(g for g in self.gates if g not in off)

    def data_paths(self, settings: S) -> dict[str, Path]:
        """The files it reads, by a key of their own: hashed into results and adapter metadata."""
        return {}

    @abstractmethod
    def load_items(self, settings: S, run: RunView) -> dict[str, list]:
        """Its items per parameter, each with an `.id`: loaded and validated before anything trains."""

    def leakage_examples(self, settings: S, items: dict[str, list]) -> list[Example]:
        """Items that must not appear in the training data (default: every item that is an Example)."""
        return [it for group in items.values() for it in group if isinstance(it, Example)]

    @abstractmethod
    def evaluate(self, settings: S, items: dict[str, list], run: RunView) -> Evaluation[O]:
        """Answer or score the items as every role and return the outcome, records and metrics."""

    @abstractmethod
    def check(self, param: str, item: Any, settings: S, evaluation: Evaluation[O]) -> ItemCheck:
        """The candidate's verdict on one item of parameter `param`."""

    @abstractmethod
    def gate(self, name: str, settings: S, evaluation: Evaluation[O]) -> GateResult:
        """Compute the gate `name` (one of `gates`); its full name is `<suite>.<name>`."""

    def gate_name(self, gate: str) -> str:
        return f"{self.name}.{gate}"

    def movers(self, gate: str, settings: S, evaluation: Evaluation[O]) -> list[Mover]:
        """The two or three items that moved the failed gate `gate` most, shown under it in the report and
        the terminal. Default: from the evaluation's records, items the candidate failed where the gate's
        baseline passed (`movers_from_records`). Override where pass/fail cannot tell (a score per item)."""
        return movers_from_records(evaluation.records, gate_baseline(gate))


def unknown_gate(suite: Suite, name: str) -> KeyError:
    return KeyError(f"unknown {suite.name} gate {name!r}; its gates are {', '.join(suite.gates)}")
