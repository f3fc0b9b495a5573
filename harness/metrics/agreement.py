"""Judge metrics: pairwise verdicts combined over both answer orders (consistency, position and length
bias), and the judge's calibration against human grades (Cohen's kappa). Pure functions over plain records."""
from __future__ import annotations

from dataclasses import dataclass


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Cohen's kappa of two raters' binary labels on the same items; None when undefined (no items,
    or both raters gave one and the same label to everything, so chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return None if expected == 1 else (observed - expected) / (1 - expected)


# The outcome of one pair, from the candidate's side. Only "win" and "loss" count in the gates; an
# "inconsistent" pair (the two orders disagree) is a tie, and so is one the judge left "unparsed".
WIN, LOSS, TIE, INCONSISTENT, UNPARSED, IDENTICAL = "win", "loss", "tie", "inconsistent", "unparsed", "identical"


def pair_outcome(candidate_first: str | None, candidate_second: str | None) -> str:
    """Combine the judge's two verdicts ("A", "B", "tie" or None when unparsed) on one pair: first with the
    candidate shown as A, then shown as B. A verdict that flips with the order is no verdict at all."""
    if candidate_first is None or candidate_second is None:
        return UNPARSED
    first = {"A": WIN, "B": LOSS, "tie": TIE}[candidate_first]
    second = {"A": LOSS, "B": WIN, "tie": TIE}[candidate_second]
    return first if first == second else INCONSISTENT


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def pairwise_summary(pairs: list[dict]) -> dict:
    """Metrics of one comparison (candidate vs one opponent) over records with keys `outcome`, `orders`
    (the two raw verdicts, candidate shown first as A then as B), `candidate_chars` and `opponent_chars`.

    - consistency_rate: share of judged pairs (both orders parsed) whose orders agree;
    - first_position_rate: share of decisive single-order verdicts that picked the answer shown first
      (0.5 for a judge blind to position, when neither side wins more often);
    - length_diff_preferred: mean characters of the answer a single-order verdict preferred minus the
      other's (a large positive value with a small candidate-minus-opponent gap suggests verbosity bias);
    - length_diff_candidate: mean characters of the candidate's answer minus the opponent's."""
    n = len(pairs)
    count = {o: sum(p["outcome"] == o for p in pairs) for o in (WIN, LOSS, TIE, INCONSISTENT, UNPARSED, IDENTICAL)}
    judged = [p for p in pairs if p["outcome"] not in (UNPARSED, IDENTICAL)]
    first_picks, preferred_diffs = [], []
    for p in pairs:
        if p["outcome"] == IDENTICAL:
            continue
        cand, opp = p["candidate_chars"], p["opponent_chars"]
        # Order 1 shows the candidate as A, order 2 shows it as B.
        for verdict, (len_a, len_b) in zip(p["orders"], ((cand, opp), (opp, cand))):
            if verdict in ("A", "B"):
                first_picks.append(verdict == "A")
                preferred_diffs.append(len_a - len_b if verdict == "A" else len_b - len_a)
    return {
        "n": n, "wins": count[WIN], "losses": count[LOSS], "ties": count[TIE], "inconsistent": count[INCONSISTENT],
        "unparsed": count[UNPARSED], "identical": count[IDENTICAL],
        "win_rate": round(count[WIN] / n, 4) if n else None,
        "net_win_rate": round((count[WIN] - count[LOSS]) / n, 4) if n else None,
        "consistency_rate": _mean([float(p["outcome"] != INCONSISTENT) for p in judged]),
        "first_position_rate": _mean([float(x) for x in first_picks]),
        "length_diff_preferred": _mean([float(d) for d in preferred_diffs]),
        "length_diff_candidate": _mean([float(p["candidate_chars"] - p["opponent_chars"]) for p in pairs]),
    }


def rubric_summary(records: list[dict]) -> dict:
    """Judged pass rate, mean score and unparsed count over records whose scores hold `judge_score`
    (None when the reply did not parse: then `passed` is False)."""
    scores = [r["scores"]["judge_score"] for r in records if r["scores"]["judge_score"] is not None]
    return {"mean_score": _mean(scores), "unparsed": len(records) - len(scores)}


@dataclass(frozen=True)
class Calibration:
    """The judge's verdicts against human grades of the same outputs, and whether that lets it gate."""

    n: int  # human grades compared (an output graded by two people counts twice)
    kappa: float | None
    agreement: float | None  # share of grades the judge agrees with
    unparsed: int  # graded outputs whose judge reply did not parse (counted as the judge failing them)
    min_kappa: float
    min_grades: int

    @property
    def gating(self) -> bool:
        return self.n >= self.min_grades and self.kappa is not None and self.kappa >= self.min_kappa

    @property
    def reason(self) -> str:
        """Why the judge may or may not gate, in one line."""
        shown = "undefined" if self.kappa is None else f"{self.kappa:.2f}"
        if self.gating:
            return f"judge calibrated: kappa {shown} >= {self.min_kappa} on {self.n} human grades"
        if self.n < self.min_grades:
            return (f"judge not calibrated: {self.n} human grades, fewer than suites.judge.min_human_grades "
                    f"{self.min_grades} (grade outputs with `tunegate review export` / `import`)")
        if self.kappa is None:
            return (f"judge not calibrated: kappa undefined on {self.n} human grades (the judge and the people "
                    "each gave a single verdict to everything)")
        return f"judge not calibrated: kappa {shown} < {self.min_kappa} on {self.n} human grades"

    def as_dict(self) -> dict:
        return {"gating": self.gating, "kappa": None if self.kappa is None else round(self.kappa, 4),
                "human_grades": self.n, "agreement": self.agreement, "unparsed": self.unparsed,
                "min_kappa": self.min_kappa, "min_human_grades": self.min_grades, "reason": self.reason}


def calibrate(human: list[bool], judge: list[bool], *, min_kappa: float, min_grades: int,
              unparsed: int = 0) -> Calibration:
    """Cohen's kappa between human grades and the judge's verdicts on the same outputs, in the same order."""
    agree = _mean([float(h == j) for h, j in zip(human, judge)])
    return Calibration(len(human), cohen_kappa(human, judge), agree, unparsed, min_kappa, min_grades)
