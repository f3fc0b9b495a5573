"""MMLU prompts and scoring by log-likelihood, in lm-evaluation-harness's two formats.

- letter (lm-eval task `mmlu`): the question, the choices as "A. ..", then "Answer:"; the
  continuations are " A".." D";
- cloze (lm-eval task `mmlu_continuation`): "Question: ..\nAnswer:" and each choice's text as
  the continuation; reports acc and acc_norm (log-likelihood divided by the choice's length
  in characters, as lm-eval does).

Both start with lm-eval's description line and put k-shot examples before the question.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["letter", "cloze"]
LETTERS = "ABCD"


@dataclass(frozen=True)
class Question:
    id: str
    subject: str  # snake_case, e.g. "high_school_geography"
    question: str
    choices: tuple[str, str, str, str]
    answer: int  # index into choices


def _description(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def _body(q: Question, fmt: Format) -> str:
    if fmt == "letter":
        options = "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(q.choices))
        return f"{q.question.strip()}{options}\nAnswer:"
    return f"Question: {q.question.strip()}\nAnswer:"


def continuations(q: Question, fmt: Format) -> list[str]:
    """The four scored continuations, with lm-eval's single-space target delimiter."""
    return [f" {LETTERS[i]}" for i in range(4)] if fmt == "letter" else [f" {c}" for c in q.choices]


def context(q: Question, fmt: Format, shots: list[Question] = ()) -> str:
    """The prompt before the continuation: description, k solved examples, then the question."""
    solved = "".join(_body(s, fmt) + continuations(s, fmt)[s.answer] + "\n\n" for s in shots)
    return _description(q.subject) + solved + _body(q, fmt)


def requests(questions: list[Question], fmt: Format, shots: dict[str, list[Question]] | None = None
             ) -> list[tuple[str, str]]:
    """(context, continuation) pairs, four per question, in question order."""
    out = []
    for q in questions:
        ctx = context(q, fmt, (shots or {}).get(q.subject, []))
        out.extend((ctx, cont) for cont in continuations(q, fmt))
    return out


def score(questions: list[Question], loglikelihoods: list[float], fmt: Format) -> list[dict]:
    """Per-question records: predicted index (raw and length-normalised) and correctness."""
    if len(loglikelihoods) != 4 * len(questions):
        raise ValueError(f"expected {4 * len(questions)} log-likelihoods, got {len(loglikelihoods)}")
    records = []
    for i, q in enumerate(questions):
        lls = loglikelihoods[4 * i: 4 * i + 4]
        pred = max(range(4), key=lambda j: lls[j])
        lengths = [len(c) for c in q.choices] if fmt == "cloze" else [1, 1, 1, 1]
        pred_norm = max(range(4), key=lambda j: lls[j] / lengths[j])
        records.append({"id": q.id, "subject": q.subject, "pred": pred, "pred_norm": pred_norm,
                        "correct": pred == q.answer, "correct_norm": pred_norm == q.answer})
    return records
