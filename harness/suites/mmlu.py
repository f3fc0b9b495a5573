"""MMLU slice: general knowledge scored by log-likelihood (never by generation), the forgetting check.

The prompt formats are lm-evaluation-harness's (harness.suites.mmlu_format). The gate is paired: the same
questions under candidate and base/champion, the difference in accuracy tested with standard
errors clustered by subject.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from harness.data.examples import Example, load_records
from harness.errors import TunegateError
from harness.gating.gates import GateResult, regression_gate
from harness.gating.stats import paired_clustered_test
from harness.roles import BASE, CANDIDATE, CHAMPION
from harness.settings import RegressionGates
from harness.store.results import example_record
from harness.suites import mmlu_format as mmlu
from harness.suites.api import PASSED, Evaluation, ItemCheck, RunView, Suite, SuiteSettings, unknown_gate


class MMLUSettings(SuiteSettings):
    enabled: bool = Field(True, description="Run the MMLU slice (general-knowledge forgetting).")
    path: Path = Field(Path("tunegate:mmlu/mmlu.jsonl"), description="Questions: JSONL with subject, question, "
                       "choices (4) and answer (index).")
    dev_path: Path = Field(Path("tunegate:mmlu/dev.jsonl"), description="Solved examples for k-shot prompts.")
    subjects: tuple[str, ...] | None = Field(None, description="Subjects to use; None uses every subject in `path`.")
    per_subject: int | None = Field(
        None, ge=1, description="At most this many questions per subject (the first ones); None uses all. The "
        "bundled model is only ~9 points above chance, so the gate needs the whole slice (818 questions) to tell "
        "an adapter that forgot everything (0.27) from base (0.34) with confidence; 75 a subject could not.",
    )
    format: Literal["letter", "cloze"] = Field(
        "cloze", description="lm-eval 'mmlu' letter format or 'mmlu_continuation' cloze. The bundled 135M model "
        "is at chance on letters (0.25) but above it on cloze acc_norm (0.35).",
    )
    metric: Literal["acc", "acc_norm"] = Field("acc_norm", description="Accuracy the gate uses (cloze reports both).")
    shots: int = Field(0, ge=0, le=5, description="Solved dev examples per subject before each question.")
    dtype: Literal["float32", "bfloat16"] | None = Field(
        "float32", description="dtype the questions are scored in; None: model.dtype. float32 by default because "
        "bf16 is not prediction-exact: it changed 6 of 400 letter and 3 of 400 cloze predictions of the bundled "
        "model (a choice's log-likelihood moved by up to 0.9). float32 takes the demo's 818 questions about 1.8x "
        "bf16's time (78 s against 44 s, the whole process).",
    )
    gates: RegressionGates = Field(default_factory=RegressionGates, description="MMLU gate thresholds.")

SCHEMA = {
    "type": "object",
    "required": ["id", "subject", "question", "choices", "answer"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "subject": {"type": "string", "minLength": 1},
        "question": {"type": "string", "minLength": 1},
        "choices": {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 4},
        "answer": {"type": "integer", "minimum": 0, "maximum": 3},
    },
}


@dataclass(frozen=True)
class Subject:
    id: str  # the subject name, e.g. "nutrition"
    questions: tuple[mmlu.Question, ...]
    origins: tuple[str, ...] = ()  # "file:line" of each question, for the leakage check


@dataclass(frozen=True)
class MMLUOutcome:
    questions: list[mmlu.Question]
    correct: dict[str, list[bool]]  # role -> per question, by the configured metric

    def accuracy(self, role: str, subject: str | None = None) -> float | None:
        if role not in self.correct:
            return None
        got = [c for q, c in zip(self.questions, self.correct[role]) if subject in (None, q.subject)]
        return sum(got) / len(got) if got else None


def _questions(path) -> list[tuple[mmlu.Question, str]]:
    """Each question with its "file:line"."""
    return [(mmlu.Question(r["id"], r["subject"], r["question"], tuple(r["choices"]), r["answer"]), where)
            for where, r in load_records(path, SCHEMA)]


def _shots(cfg: MMLUSettings, run: RunView, subjects: list[str]) -> dict[str, list[mmlu.Question]]:
    if cfg.shots == 0:
        return {}
    dev: dict[str, list[mmlu.Question]] = {}
    for q, _ in _questions(run.path(cfg.dev_path)):
        dev.setdefault(q.subject, []).append(q)
    for s in subjects:
        if len(dev.get(s, [])) < cfg.shots:
            raise TunegateError(f"{cfg.dev_path}: subject {s!r} has {len(dev.get(s, []))} dev examples; "
                                f"suites.mmlu.shots = {cfg.shots} needs that many")
    return {s: dev[s][: cfg.shots] for s in subjects}


def _mean(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4)


class MMLU(Suite[MMLUSettings, MMLUOutcome]):
    """General knowledge by log-likelihood: per-subject accuracy, gated against base and champion."""

    name = "mmlu"
    failure_mode = "forgetting"
    settings = MMLUSettings
    params = ("subject",)
    gates = ("noninferior_base", "noninferior_champion")
    needs_logprobs = True

    def data_paths(self, settings: MMLUSettings) -> dict[str, Path]:
        return {"mmlu": settings.path, "mmlu.dev": settings.dev_path}

    def load_items(self, settings: MMLUSettings, run: RunView) -> dict[str, list]:
        path = run.path(settings.path)
        by_subject: dict[str, list[tuple[mmlu.Question, str]]] = {}
        for q, where in _questions(path):
            by_subject.setdefault(q.subject, []).append((q, where))
        wanted = settings.subjects or tuple(sorted(by_subject))
        missing = [s for s in wanted if s not in by_subject]
        if missing:
            raise TunegateError(f"suites.mmlu.subjects: {missing[0]!r} has no questions in {path}; "
                                f"available: {', '.join(sorted(by_subject))}")
        if len(wanted) < 2:
            raise TunegateError("suites.mmlu.subjects: the clustered test needs at least two subjects")
        chosen = {s: by_subject[s][: settings.per_subject] for s in wanted}
        return {"subject": [Subject(s, tuple(q for q, _ in got), tuple(w for _, w in got))
                            for s, got in chosen.items()]}

    def leakage_examples(self, settings, items) -> list[Example]:
        """The questions asked, as prompts: one in the training data is contamination."""
        return [Example(q.id, ({"role": "user", "content": q.question},), where)
                for subject in items["subject"] for q, where in zip(subject.questions, subject.origins)]

    def evaluate(self, settings, items, run) -> Evaluation[MMLUOutcome]:
        cfg = settings
        subjects = items["subject"]
        questions = [q for s in subjects for q in s.questions]
        shots = _shots(cfg, run, [s.id for s in subjects])
        pairs = mmlu.requests(questions, cfg.format, shots)
        key = "correct_norm" if cfg.metric == "acc_norm" else "correct"
        correct, metrics, records = {}, {}, []
        for role, lls in run.loglikelihood(pairs, cfg.dtype).items():
            scored = mmlu.score(questions, lls, cfg.format)
            correct[role] = [r[key] for r in scored]
            for i, (q, r) in enumerate(zip(questions, scored)):
                pred = r["pred_norm"] if key == "correct_norm" else r["pred"]
                records.append(example_record(
                    suite=self.name, example_id=q.id, role=role, prompt=[{"role": "user", "content": pairs[4 * i][0]}],
                    output=pairs[4 * i + pred][1].strip(), passed=r[key],
                    scores={"pred": r["pred"], "pred_norm": r["pred_norm"], "answer": q.answer},
                    slice={"subject": q.subject}, reason="" if r[key] else f"answered {pred}, correct is {q.answer}",
                ))
            metrics[role] = {
                "acc": _mean(r["correct"] for r in scored),
                "acc_norm": _mean(r["correct_norm"] for r in scored) if cfg.format == "cloze" else None,
                "metric": cfg.metric, "format": cfg.format, "shots": cfg.shots, "n": len(questions),
                "by_subject": {s.id: _mean(c for q, c in zip(questions, correct[role]) if q.subject == s.id)
                               for s in subjects},
            }
        return Evaluation(MMLUOutcome(questions, correct), records, metrics)

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        """xfail when the subject's accuracy dropped beyond the margin (the clustered gate decides)."""
        outcome = evaluation.outcome
        cand, base = outcome.accuracy(CANDIDATE, item.id), outcome.accuracy(BASE, item.id)
        if base - cand > settings.gates.margin:
            return ItemCheck("xfail", f"{item.id}: accuracy {cand:.3f} vs base {base:.3f} on "
                             f"{len(item.questions)} questions")
        return PASSED

    def gate(self, name, settings, evaluation) -> GateResult:
        """Block when accuracy drops more than the margin below base/champion, significantly by the
        paired test clustered by subject."""
        if name not in self.gates:
            raise unknown_gate(self, name)
        g, outcome, full = settings.gates, evaluation.outcome, self.gate_name(name)
        role = name.removeprefix("noninferior_")
        context = {"base_value": outcome.accuracy(BASE), "champion_value": outcome.accuracy(CHAMPION)}
        if role not in outcome.correct:
            return regression_gate(full, self.name, outcome.accuracy(CANDIDATE), None, role, g.margin, False, "",
                                   **context)
        test = paired_clustered_test(outcome.correct[CANDIDATE], outcome.correct[role],
                                     [q.subject for q in outcome.questions])
        return regression_gate(
            full, self.name, outcome.accuracy(CANDIDATE), outcome.accuracy(role), role, g.margin,
            test.p_worse < g.alpha,
            f"paired t-test clustered by {len({q.subject for q in outcome.questions})} subjects: "
            f"difference {test.diff:+.3f}, 95% CI {test.ci[0]:+.3f} to {test.ci[1]:+.3f}, p={test.p_worse:.3g}",
            what=settings.metric, p_value=test.p_worse, ci=test.ci, **context,
        )
