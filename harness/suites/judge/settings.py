"""The judge suite's table, [suites.judge]: its server, prompts, scale and gates."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from harness.settings import OpenAIServer, Section
from harness.suites.api import SuiteSettings


class JudgeGates(Section):
    min_pass_rate: float = Field(0.7, ge=0, le=1, description="Bar: share of the candidate's answers the judge "
                                 "passes (score >= pass_score; an unparsed verdict is a fail).")
    margin: float = Field(0.05, ge=0, le=1, description="Largest tolerated drop in judged pass rate vs base/champion.")
    pairwise_margin: float = Field(
        0.1, ge=0, le=1, description="Largest tolerated net loss rate in pairwise comparison, (losses - wins) / "
        "items, vs base/champion; a pair whose two orders disagree is a tie.",
    )
    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the one-sided paired tests "
                         "(McNemar exact; the sign test over won and lost pairs).")


class JudgeSettings(SuiteSettings):
    """LLM-as-judge: a model behind an OpenAI-compatible API grades answers and compares them pairwise."""

    enabled: bool = Field(False, description="Run the judge suite. Off by default: it needs a judge server.")
    server: OpenAIServer | None = Field(None, description="The judge's server ([suites.judge.server]).")
    path: Path | None = Field(None, description="Items to judge (golden format); None: the golden set, whose "
                              "answers the run already generates.")
    max_new_tokens: int | None = Field(None, ge=1, le=4096, description="Generation budget per answer; None: "
                                       "suites.golden.max_new_tokens (so the golden answers are reused).")
    criteria: str = Field(
        "The answer is correct and complete, follows the user's instructions and format, and agrees in substance "
        "with the reference answer when one is given (wording may differ).",
        description="What a good answer is; goes into both prompts as {criteria}.",
    )
    rubric_template: str | None = Field(
        None, description="Grading prompt with {criteria}, {question}, {reference}, {answer} and {scale}; None: "
        "harness.suites.judge.client.RUBRIC_TEMPLATE. It must ask for JSON with 'score'.",
    )
    pairwise_template: str | None = Field(
        None, description="Comparison prompt with {criteria}, {question}, {reference}, {answer_a} and {answer_b}; "
        "None: harness.suites.judge.client.PAIRWISE_TEMPLATE. It must ask for JSON with 'winner' (A, B or tie).",
    )
    scale: int = Field(5, ge=2, le=10, description="Scores run from 1 to this.")
    pass_score: int = Field(4, ge=1, le=10, description="Scores at or above this pass.")
    pairwise: bool = Field(True, description="Compare the candidate with base and champion, each pair in both "
                           "orders (4 requests an item); off: rubric grades only.")
    json_mode: bool = Field(True, description="Send response_format json_object; set false for servers that "
                            "reject it (the reply is parsed tolerantly either way).")
    max_tokens: int = Field(400, ge=16, le=8192, description="Tokens the judge may write per reply.")
    temperature: float = Field(0.0, ge=0, le=2, description="Judge sampling temperature (0: repeatable verdicts).")
    min_kappa: float = Field(0.6, ge=-1, le=1, description="The judge gates only when Cohen's kappa between its "
                             "verdicts and human grades (tunegate review) reaches this; below, it only reports.")
    min_human_grades: int = Field(30, ge=1, description="Human grades the kappa needs before the "
                                  "judge may gate (fewer: it only reports).")
    calibration_suites: tuple[str, ...] = Field(
        ("golden",), description="Suites whose human-graded outputs (any run in the history) calibrate the judge.",
    )
    gates: JudgeGates = Field(default_factory=JudgeGates, description="Judge gate thresholds.")

    @model_validator(mode="after")
    def _consistent(self):
        if self.enabled and self.server is None:
            raise ValueError("an enabled judge needs a [suites.judge.server] table with base_url and model")
        if self.pass_score > self.scale:
            raise ValueError(f"pass_score {self.pass_score} is above scale {self.scale}")
        for name, needed in (("rubric_template", ("{answer}",)), ("pairwise_template", ("{answer_a}", "{answer_b}"))):
            missing = [p for p in needed if getattr(self, name) is not None and p not in getattr(self, name)]
            if missing:
                raise ValueError(f"{name} lacks the placeholder {missing[0]}")
        return self
