"""Human review: Cohen's kappa against textbook values, and grade files read strictly."""
from __future__ import annotations

import pytest

from harness.errors import TunegateError
from harness.metrics.agreement import cohen_kappa
from harness.report.review import agreement, export_rows, parse_grades, sample, write_rows
from harness.store.history import Grade, History
from tests.report_data import results


def ratings(table: dict[tuple[bool, bool], int]) -> tuple[list[bool], list[bool]]:
    a, b = [], []
    for (x, y), n in table.items():
        a += [x] * n
        b += [y] * n
    return a, b


def test_kappa_matches_textbook_examples():
    # Wikipedia, "Cohen's kappa", worked example: 50 proposals, p_o = 0.7, p_e = 0.5 -> kappa = 0.4
    assert cohen_kappa(*ratings({(True, True): 20, (True, False): 5, (False, True): 10, (False, False): 15})) == \
        pytest.approx(0.4)
    # same article, second table: p_o = 0.60, p_e = 0.54 -> kappa = 0.1304
    assert cohen_kappa(*ratings({(True, True): 45, (True, False): 15, (False, True): 25, (False, False): 15})) == \
        pytest.approx(0.06 / 0.46)
    assert cohen_kappa([True, False], [True, False]) == 1.0
    assert cohen_kappa([True, True], [True, True]) is None  # chance agreement is 1: undefined
    assert cohen_kappa([], []) is None


def test_agreement_per_suite_and_overall():
    r = results(n=12)
    auto = {(x["suite"], x["example_id"]): x["passed"] for x in r["examples"] if x["role"] == "candidate"}
    grades = [Grade(r["run_id"], s, e, "candidate", "ann", passed) for (s, e), passed in auto.items()]
    grades[0] = Grade(*list(vars(grades[0]).values())[:5], not grades[0].passed)  # one disagreement
    got = {a.suite: a for a in agreement(r, grades)}
    assert set(got) == {"golden", "safety", "all"}
    assert got["all"].n == 12 and got["all"].percent == pytest.approx(100 * 11 / 12)
    assert sum(a.n for s, a in got.items() if s != "all") == 12


@pytest.fixture
def history(tmp_path):
    r = results(n=12)
    path = tmp_path / "reports" / r["run_id"] / "results.json"
    path.parent.mkdir(parents=True)
    import json

    path.write_text(json.dumps(r))
    h = History(tmp_path / "history.sqlite")
    h.record(r, path)
    return h, r


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_export_then_import_round_trip(history, tmp_path, ext):
    h, r = history
    picked = sample(r, 5, seed=3)
    assert len(picked) == 5 and all(p["role"] == "candidate" for p in picked)
    rows = export_rows(r, picked, {})
    assert all("passed" not in row for row in rows)  # graders are not shown the automated verdict
    rows[0]["output"] = 'multi\nline, "quoted", output'
    for i, row in enumerate(rows):
        row["grade"] = "pass" if i % 2 else "FAIL"
    rows[1]["grade"] = ""  # left ungraded
    path = tmp_path / f"grades.{ext}"
    write_rows(path, rows)
    got = parse_grades(path, h, "me")
    assert len(got.grades) == 4 and got.skipped == 1
    assert [g.passed for g in got.grades] == [False, False, True, False]
    assert all(g.grader == "me" for g in got.grades)


@pytest.mark.parametrize("ext, lines, message", [
    ("jsonl", ['{"run_id": "RUN", "suite": "golden"', ""], r"grades\.jsonl:1: invalid JSON"),
    ("jsonl", ['{"run_id": "RUN", "suite": "golden", "example_id": "ex-1", "role": "candidate", "grade": "pass"}',
               '{"run_id": "RUN", "suite": "golden", "example_id": "ex-1", "role": "candidate", "grade": "maybe"}'],
     r"grades\.jsonl:2: grade 'maybe' is not one of pass/fail"),
    ("jsonl", ['{"run_id": "RUN", "suite": "golden", "example_id": "nope", "role": "candidate", "grade": "pass"}'],
     r"grades\.jsonl:1: run RUN has no output for suite=golden example=nope"),
    ("jsonl", ['{"run_id": "20990101-000000-beef", "suite": "golden", "example_id": "ex-1", "role": "candidate", '
               '"grade": "pass"}'], r"grades\.jsonl:1: unknown run id '20990101-000000-beef'"),
    ("csv", ["run_id,suite,example_id,role,output,grade", "RUN,golden,ex-1,candidate,x,pass",
             'RUN,golden,ex-2,candidate,"multi', 'line",fail', "RUN,golden,ex-4,candidate,x,nah"],
     r"grades\.csv:5: grade 'nah'"),
    ("csv", ["run_id,suite,example_id", "RUN,golden,ex-1"], r"grades\.csv:1: header lacks column\(s\) role, grade"),
    ("csv", ["run_id,suite,example_id,role,grade", "RUN,golden,ex-1,candidate,"], "no graded rows"),
])
def test_malformed_grades_name_file_and_line_and_store_nothing(history, tmp_path, ext, lines, message):
    h, r = history
    path = tmp_path / f"grades.{ext}"
    path.write_text("\n".join(line.replace("RUN", r["run_id"]) for line in lines) + "\n")
    with pytest.raises(TunegateError, match=message.replace("RUN", r["run_id"])):
        parse_grades(path, h, "me")
    assert h.grades(r["run_id"]) == []
