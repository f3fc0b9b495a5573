"""MMLU slice: general knowledge scored by log-likelihood (never by generation), the forgetting check.

The prompt formats are lm-evaluation-harness's (harness.mmlu). The gate is paired: the same
questions under candidate and base/champion, the difference in accuracy tested with standard
errors clustered by subject.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness import mmlu
from harness.data import Example, load_records
from harness.errors import TunegateError
from harness.gates import GateResult, regression_gate
from harness.results import example_record
from harness.stats import paired_clustered_test

NAME = "mmlu"
ITEMS = ("subject",)
GATES = ("noninferior_base", "noninferior_champion")
NEEDS_LOGPROBS = True  # scored by log-likelihood: an engine without log-probabilities cannot run it

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


@dataclass(frozen=True)
class MMLUOutcome:
    questions: list[mmlu.Question]
    correct: dict[str, list[bool]]  # role -> per question, by the configured metric

    def accuracy(self, role: str, subject: str | None = None) -> float | None:
        if role not in self.correct:
            return None
        got = [c for q, c in zip(self.questions, self.correct[role]) if subject in (None, q.subject)]
        return sum(got) / len(got) if got else None


def enabled(config) -> bool:
    return config.suites.mmlu.enabled


def data_paths(config) -> dict:
    c = config.suites.mmlu
    return {"mmlu": c.path, "mmlu.dev": c.dev_path}


def _questions(path) -> list[mmlu.Question]:
    return [mmlu.Question(r["id"], r["subject"], r["question"], tuple(r["choices"]), r["answer"])
            for _, r in load_records(path, SCHEMA)]


def items(session) -> dict[str, list]:
    cfg = session.config.suites.mmlu
    path = session.config.path(cfg.path)
    by_subject: dict[str, list[mmlu.Question]] = {}
    for q in _questions(path):
        by_subject.setdefault(q.subject, []).append(q)
    wanted = cfg.subjects or tuple(sorted(by_subject))
    missing = [s for s in wanted if s not in by_subject]
    if missing:
        raise TunegateError(f"suites.mmlu.subjects: {missing[0]!r} has no questions in {path}; "
                            f"available: {', '.join(sorted(by_subject))}")
    if len(wanted) < 2:
        raise TunegateError("suites.mmlu.subjects: the clustered test needs at least two subjects")
    return {"subject": [Subject(s, tuple(by_subject[s][: cfg.per_subject])) for s in wanted]}


def leakage_examples(session) -> list[Example]:
    """The questions asked, as prompts: one in the training data is contamination."""
    asked = {q.id for subject in session.suite_items(NAME)["subject"] for q in subject.questions}
    path = session.config.path(session.config.suites.mmlu.path)
    return [Example(r["id"], ({"role": "user", "content": r["question"]},), where)
            for where, r in load_records(path, SCHEMA) if r["id"] in asked]


def _shots(session, subjects: list[str]) -> dict[str, list[mmlu.Question]]:
    cfg = session.config.suites.mmlu
    if cfg.shots == 0:
        return {}
    dev: dict[str, list[mmlu.Question]] = {}
    for q in _questions(session.config.path(cfg.dev_path)):
        dev.setdefault(q.subject, []).append(q)
    for s in subjects:
        if len(dev.get(s, [])) < cfg.shots:
            raise TunegateError(f"{cfg.dev_path}: subject {s!r} has {len(dev.get(s, []))} dev examples; "
                                f"suites.mmlu.shots = {cfg.shots} needs that many")
    return {s: dev[s][: cfg.shots] for s in subjects}


def evaluate(session) -> MMLUOutcome:
    cfg = session.config.suites.mmlu
    subjects = session.suite_items(NAME)["subject"]
    questions = [q for s in subjects for q in s.questions]
    shots = _shots(session, [s.id for s in subjects])
    pairs = mmlu.requests(questions, cfg.format, shots)
    key = "correct_norm" if cfg.metric == "acc_norm" else "correct"
    correct, metrics = {}, {}
    for role, lls in session.loglikelihood_all(pairs, cfg.dtype).items():
        scored = mmlu.score(questions, lls, cfg.format)
        correct[role] = [r[key] for r in scored]
        for i, (q, r) in enumerate(zip(questions, scored)):
            pred = r["pred_norm"] if key == "correct_norm" else r["pred"]
            session.records.append(example_record(
                suite=NAME, example_id=q.id, role=role, prompt=[{"role": "user", "content": pairs[4 * i][0]}],
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
    session.suite_metrics[NAME] = metrics
    return MMLUOutcome(questions, correct)


def _mean(flags) -> float:
    flags = list(flags)
    return round(sum(flags) / len(flags), 4)


def gate(name: str, outcome: MMLUOutcome, session) -> GateResult:
    """Block when accuracy drops more than the margin below base/champion, significantly by the
    paired test clustered by subject."""
    g = session.config.suites.mmlu.gates
    role = name.removeprefix("noninferior_")
    if name not in GATES:
        raise KeyError(f"unknown mmlu gate {name!r}")
    context = {"base_value": outcome.accuracy("base"), "champion_value": outcome.accuracy("champion")}
    cand = outcome.correct["candidate"]
    if role not in outcome.correct:
        return regression_gate(f"{NAME}.{name}", NAME, outcome.accuracy("candidate"), None, role, g.margin,
                               False, "", **context)
    test = paired_clustered_test(cand, outcome.correct[role], [q.subject for q in outcome.questions])
    return regression_gate(
        f"{NAME}.{name}", NAME, outcome.accuracy("candidate"), outcome.accuracy(role), role, g.margin,
        test.p_worse < g.alpha,
        f"paired t-test clustered by {len({q.subject for q in outcome.questions})} subjects: "
        f"difference {test.diff:+.3f}, 95% CI {test.ci[0]:+.3f} to {test.ci[1]:+.3f}, p={test.p_worse:.3g}",
        what=f"{session.config.suites.mmlu.metric}", p_value=test.p_worse, ci=test.ci, **context,
    )
