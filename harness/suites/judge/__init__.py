"""LLM-as-judge: a judge model grades every role's answers with a rubric prompt and compares the candidate
with base and champion pairwise, each pair in both orders; it gates only once calibrated against human grades.

The items are the golden set's by default (their answers are reused from the engine's cache). A judge
whose verdicts agree with the human review loop's grades (harness.report.review) with Cohen's kappa below
suites.judge.min_kappa, or on fewer than suites.judge.min_human_grades grades, is reported in full but its
gates are recorded as not gating (passed None), with the reason.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from harness import metrics
from harness.data.examples import load_jsonl
from harness.gating.gates import GateResult, absolute_gate, noninferiority_gate, regression_gate
from harness.gating.stats import mcnemar_exact
from harness.metrics.agreement import (
    IDENTICAL,
    LOSS,
    WIN,
    Calibration,
    calibrate,
    pair_outcome,
    pairwise_summary,
    rubric_summary,
)
from harness.report.review import GradedOutput, graded_outputs
from harness.roles import BASE, BASELINES, CANDIDATE, CHAMPION
from harness.store.backends import open_history
from harness.store.cache import CACHE_FILE, ResultCache
from harness.store.history import HISTORY_FILE
from harness.store.results import example_record
from harness.suites.api import PASSED, Evaluation, ItemCheck, RunView, Suite, unknown_gate
from harness.suites.golden import RubricOutcome
from harness.suites.judge.client import Judge, Judgement
from harness.suites.judge.settings import JudgeSettings

NAME = "judge"


@dataclass(frozen=True)
class JudgeOutcome(RubricOutcome):
    """The golden suite's outcome shape (judged pass/fail per item, per role), plus the pairwise verdicts."""

    pairs: dict[str, list[dict]]  # opponent role -> the candidate's pairs with it, in file order
    calibration: Calibration
    pairwise: bool  # suites.judge.pairwise: the comparisons were asked for


def human_graded(run: RunView, settings: JudgeSettings) -> list[GradedOutput]:
    """The human-graded outputs that calibrate the judge, from the history store (none before it exists)."""
    config = run.config
    if config.registry.backend == "sqlite" and not (run.workspace / HISTORY_FILE).is_file():
        return []  # a first run: nothing graded, and no store to create here
    history = open_history(config, run.workspace)  # the shared one, where [registry] says so
    try:
        return graded_outputs(history, settings.calibration_suites)[0]
    finally:
        history.close()


def passes(j: Judgement, pass_score: int) -> bool:
    """The judge's pass/fail: an unparsed verdict is a fail, never a pass."""
    return j.parsed and j.value >= pass_score


def _reason(j: Judgement, scale: int) -> str:
    if not j.parsed:
        return f"judge reply unparsed after a retry: {j.error}; reply: {j.raw[:120]!r}"
    return f"judge {j.value:g}/{scale}: {j.reasoning}"


def _pairs(judge: Judge, examples, prompts, answers: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Candidate vs each opponent that ran, both orders, all in one batch of requests."""
    asks, slots = [], []
    for opp in (o for o in BASELINES if o in answers):
        for i, (ex, prompt) in enumerate(zip(examples, prompts)):
            cand, other = answers[CANDIDATE][i], answers[opp][i]
            if cand != other:  # the same text twice is a tie without asking
                asks += [judge.pairwise_messages(prompt, ex.reference, cand, other),
                         judge.pairwise_messages(prompt, ex.reference, other, cand)]
                slots.append((opp, i))
    verdicts = judge.compare(asks)
    asked = {slot: (verdicts[2 * k], verdicts[2 * k + 1]) for k, slot in enumerate(slots)}
    pairs: dict[str, list[dict]] = {}
    for opp in (o for o in BASELINES if o in answers):
        pairs[opp] = []
        for i, ex in enumerate(examples):
            got = asked.get((opp, i))
            orders = [None, None] if got is None else [j.value for j in got]
            pairs[opp].append({
                "example_id": ex.id, "orders": orders,
                "outcome": IDENTICAL if got is None else pair_outcome(*orders),
                "candidate_chars": len(answers[CANDIDATE][i]), "opponent_chars": len(answers[opp][i]),
            })
    return pairs


def suite_metrics(outcome: JudgeOutcome, judge: Judge, model: str) -> dict:
    """Per role: judged pass rate, mean score, unparsed replies. The candidate's also hold the pairwise
    comparisons (vs_base, vs_champion) and the judge's calibration and request counts."""
    out = {}
    for role, recs in outcome.records.items():
        rows = list(recs.values())
        out[role] = {**metrics.summary(rows), **rubric_summary(rows)}
    cand = out[CANDIDATE]
    cand.update({f"vs_{opp}": pairwise_summary(pairs) for opp, pairs in outcome.pairs.items()})
    cand["judge"] = {"model": model, **outcome.calibration.as_dict(), "requests": judge.requests,
                     "cached": judge.cached}
    return out


def pairwise_gate(name: str, pairs: list[dict] | None, role: str, margin: float, alpha: float) -> GateResult:
    """Block when the candidate loses to `role` on more items than it wins, by more than `margin` of the
    items, and a one-sided sign test over the decisive pairs (McNemar exact: losses vs wins) is below `alpha`.
    Ties, pairs whose two orders disagree and unparsed pairs count for neither side."""
    if pairs is None:
        return GateResult(name, NAME, "noninferior", None, None, baseline_role=role, margin=margin,
                          detail=f"no {role} to compare with")
    n = len(pairs)
    wins = [p["outcome"] == WIN for p in pairs]
    losses = [p["outcome"] == LOSS for p in pairs]
    # As paired pass/fail: a win is (candidate passes, opponent fails), a loss the reverse, else both pass.
    test = mcnemar_exact([not lost for lost in losses], [not won for won in wins])
    s = pairwise_summary(pairs)
    return regression_gate(
        name, NAME, (sum(wins) - sum(losses)) / n if n else 0.0, 0.0, role, margin, n > 0 and test.p_worse < alpha,
        f"sign test p={test.p_worse:.3g}, {s['wins']} won / {s['losses']} lost / {s['ties']} tied, "
        f"{s['inconsistent']} with the orders disagreeing, {s['unparsed']} unparsed, {s['identical']} identical",
        what="net win rate", p_value=test.p_worse,
    )


class JudgeSuite(Suite[JudgeSettings, JudgeOutcome]):
    """LLM-as-judge over the golden set (or its own items); gates only once calibrated."""

    name = NAME
    failure_mode = "quality as judged by a model"
    settings = JudgeSettings
    params = ("example",)
    gates = ("pass_rate", "noninferior_base", "noninferior_champion", "pairwise_base", "pairwise_champion")

    def data_paths(self, settings: JudgeSettings) -> dict[str, Path]:
        # Without a path of its own the judge reads the golden file: declared as such, so it is hashed once.
        return {} if settings.path is None else {"judge": settings.path}

    def load_items(self, settings: JudgeSettings, run: RunView) -> dict[str, list]:
        if settings.path is None:  # the golden set, loaded and validated once for both suites
            return {"example": run.items("golden")["example"]}
        return {"example": load_jsonl(run.path(settings.path), kind="golden")}

    def evaluate(self, settings, items, run) -> Evaluation[JudgeOutcome]:
        cfg, examples = settings, items["example"]
        prompts = [ex.prompt(run.config.data.system_prompt) for ex in examples]
        answers = run.generate(prompts, cfg.max_new_tokens or run.config.suites.golden.max_new_tokens)
        graded = human_graded(run, cfg)
        references = {ex.id: ex.reference for ex in examples}
        cache = ResultCache(run.workspace / CACHE_FILE)
        try:
            judge = Judge(cfg, cache)
            roles = list(answers)
            asks = [judge.rubric_messages(p, ex.reference, out)
                    for role in roles for ex, p, out in zip(examples, prompts, answers[role])]
            # The human-graded outputs are judged with the same prompt as the run's own answers.
            asks += [judge.rubric_messages(g.prompt, references.get(g.grade.example_id), g.output) for g in graded]
            verdicts = judge.grade(asks)
            pairs = _pairs(judge, examples, prompts, answers) if cfg.pairwise else {}
        finally:
            cache.close()
        by_role = {role: verdicts[k * len(examples):(k + 1) * len(examples)] for k, role in enumerate(roles)}
        on_graded = verdicts[len(roles) * len(examples):]
        calibration = calibrate([g.grade.passed for g in graded], [passes(j, cfg.pass_score) for j in on_graded],
                                min_kappa=cfg.min_kappa, min_grades=cfg.min_human_grades,
                                unparsed=sum(not j.parsed for j in on_graded))
        records: dict[str, dict[str, dict]] = {}
        for role in roles:
            records[role] = {}
            for i, (ex, prompt, j) in enumerate(zip(examples, prompts, by_role[role])):
                scores = {"judge_score": j.value, "parsed": j.parsed, "attempts": j.attempts}
                if role == CANDIDATE:
                    scores.update({f"vs_{opp}": got[i]["outcome"] for opp, got in pairs.items()})
                records[role][ex.id] = example_record(
                    suite=NAME, example_id=ex.id, role=role, prompt=prompt, output=answers[role][i],
                    passed=passes(j, cfg.pass_score), scores=scores, slice=ex.slice, reason=_reason(j, cfg.scale))
        outcome = JudgeOutcome(examples, records, pairs, calibration, cfg.pairwise)
        return Evaluation(outcome, [r for by_id in records.values() for r in by_id.values()],
                          suite_metrics(outcome, judge, cfg.server.model))

    def check(self, param, item, settings, evaluation) -> ItemCheck:
        """xfail when the judge fails the answer or it loses a comparison in both orders; never a hard failure."""
        rec = evaluation.outcome.candidate_record(item.id)
        lost = [k.removeprefix("vs_") for k, v in rec["scores"].items() if k.startswith("vs_") and v == LOSS]
        if rec["passed"] and not lost:
            return PASSED
        why = [] if rec["passed"] else [rec["reason"]]
        why += [f"lost to {role} in both orders" for role in lost]
        return ItemCheck("xfail", f"{'; '.join(why)} | output: {rec['output'][:200]!r}")

    def gate(self, name, settings, evaluation) -> GateResult:
        """An uncalibrated judge's gates do not gate (passed None), with the reason."""
        g, outcome, full = settings.gates, evaluation.outcome, self.gate_name(name)
        context = {"base_value": outcome.rate(BASE), "champion_value": outcome.rate(CHAMPION)}
        if name == "pass_rate":
            result = absolute_gate(full, NAME, outcome.outcomes(CANDIDATE), g.min_pass_rate,
                                   what="judged pass rate", **context)
        elif name in ("noninferior_base", "noninferior_champion"):
            role = name.removeprefix("noninferior_")
            result = noninferiority_gate(full, NAME, outcome.outcomes(CANDIDATE), outcome.outcomes(role), role,
                                         g.margin, g.alpha, what="judged pass rate", **context)
        elif name in ("pairwise_base", "pairwise_champion"):
            role = name.removeprefix("pairwise_")
            if not outcome.pairwise:
                return GateResult(full, NAME, "noninferior", None, None, baseline_role=role,
                                  detail="pairwise comparison is off (suites.judge.pairwise = false)")
            result = pairwise_gate(full, outcome.pairs.get(role), role, g.pairwise_margin, g.alpha)
        else:
            raise unknown_gate(self, name)
        cal = outcome.calibration
        if cal.gating or result.passed is None:
            return result
        would = "would pass" if result.passed else "would fail"
        return dataclasses.replace(result, passed=None, detail=f"{cal.reason}; not gating ({would}: {result.detail})")
