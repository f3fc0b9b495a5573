"""A blocked run says why: under each failed gate, in results.json, the report, the summary and the
terminal, the items that moved it most, with the candidate's and the base's answers side by side; and
every run says which failure modes it checked and which were off, and why."""
from __future__ import annotations

import html
import json

from harness.roles import BASE, CANDIDATE
from harness.store.results import example_record
from harness.suites import BUILTIN
from harness.suites.api import movers_from_records
from tests.test_e2e_suites import ALWAYS, OTHER_SUITES, golden_rows, latest_results, make_project, run, write_jsonl

pytest_plugins = ["pytester"]


def record(example_id: str, role: str, output: str, passed: bool, scores: dict | None = None, **extra) -> dict:
    return example_record(suite="s", example_id=example_id, role=role,
                          prompt=[{"role": "user", "content": f"question {example_id}"}], output=output, passed=passed,
                          scores=scores or {}, slice=extra.pop("slice", {}), reason="" if passed else "wrong", **extra)


def test_the_default_movers_are_items_lost_against_the_baseline_worst_first():
    records = [record("kept", BASE, "a", True), record("kept", CANDIDATE, "a", True),
               record("lost", BASE, "good", True, {"score": 0.9}), record("lost", CANDIDATE, "bad", False, {"score": 0.2}),
               record("lost-less", BASE, "good", True, {"score": 0.5}),
               record("lost-less", CANDIDATE, "meh", False, {"score": 0.4}),
               record("both-fail", BASE, "x", False), record("both-fail", CANDIDATE, "y", False),
               record("critical", BASE, "ok", True), record("critical", CANDIDATE, "no", False, critical=True,
                                                              critical_failed=True)]
    got = movers_from_records(records, BASE)
    assert [m.example_id for m in got] == ["critical", "lost", "lost-less"]
    assert (got[1].question, got[1].candidate, got[1].baseline, got[1].baseline_role, got[1].why) == (
        "question lost", "bad", "good", BASE, "wrong")
    # Fewer lost items than the limit: the candidate's other failures fill in.
    assert [m.example_id for m in movers_from_records(records[:4] + records[6:8], BASE)] == ["lost", "both-fail"]


def test_diversity_ranks_prompts_by_the_drop_in_distinct_2_and_safety_by_the_gates_prompts():
    diversity = [record("open", BASE, "a b c\n---\nd e f", True, {"distinct_2": 1.0}),
                 record("open", CANDIDATE, '{"city": "X"}\n---\n{"city": "X"}', False, {"distinct_2": 0.2}),
                 record("mild", BASE, "a b", True, {"distinct_2": 0.8}),
                 record("mild", CANDIDATE, "a c", True, {"distinct_2": 0.7}),
                 record("up", BASE, "a", True, {"distinct_2": 0.1}), record("up", CANDIDATE, "b", True, {"distinct_2": 0.9})]
    got = BUILTIN["diversity"].movers("ratio_base", None, _evaluation(diversity))
    assert [m.example_id for m in got] == ["open", "mild"]
    assert got[0].why.startswith("distinct_2 1.0 -> 0.2") and '{"city": "X"}' in got[0].candidate

    safety = [record("harm", BASE, "Sure, here is how", False, slice={"label": "unsafe"}),
              record("harm", CANDIDATE, "Sure, here is how", False, slice={"label": "unsafe"}),
              record("xs", BASE, "To kill a process, run kill", True, slice={"label": "safe"}),
              record("xs", CANDIDATE, "I cannot help with killing", False, slice={"label": "safe"})]
    safety_suite = BUILTIN["safety"]
    assert [m.example_id for m in safety_suite.movers("over_refusal_vs_base", None, _evaluation(safety))] == ["xs"]
    assert [m.example_id for m in safety_suite.movers("harmful_vs_base", None, _evaluation(safety))] == ["harm"]


def test_bias_explains_its_flip_gates_by_pairs_and_its_figures_by_none():
    flips = [record("pair-1", BASE, "yes\n--- swapped ---\nyes", True, slice={"attribute": "name"}),
             record("pair-1", CANDIDATE, "yes\n--- swapped ---\nno", False, slice={"attribute": "name"})]
    bias = BUILTIN["bias"]
    assert [m.example_id for m in bias.movers("flip_rate_vs_base", None, _evaluation(flips))] == ["pair-1"]
    assert bias.movers("bbq_vs_base", None, _evaluation(flips)) == []  # BBQ is a score over categories
    assert bias.movers("slice_gap", None, _evaluation(flips)) == []


def _evaluation(records):
    from harness.suites.api import Evaluation

    return Evaluation(None, records, {})


def test_a_real_blocked_run_shows_what_moved_its_gate_and_what_was_not_checked(pytester, tiny_model_dir, repo_root):
    """Run 1 (every golden item passes) records what base and candidate answer; run 2 (same adapter, cached
    answers) asks each item not to contain the candidate's answer, which the base's does not contain: the
    candidate fails the items the base passes, and golden.pass_rate blocks."""
    n = 8
    root = make_project(pytester, tiny_model_dir, repo_root, golden=golden_rows(ALWAYS, n=n))
    toml = root / "tunegate.toml"
    # A high learning rate, so that the adapter's greedy answers differ from the base's.
    toml.write_text(toml.read_text().replace("epochs = 1", "epochs = 2\nlearning_rate = 0.05")
                    + '[task]\nname = "ticket-triage"\ndescription = "support tickets"\n')
    first, text = run(pytester)
    assert first.ret == 0, text[-3000:]
    answers = {(r["example_id"], r["role"]): r["output"].strip() for r in latest_results(root)["examples"]}
    rows, lost = golden_rows(ALWAYS, n=n), []
    for row in rows:
        cand, base = answers[(row["id"], CANDIDATE)], answers[(row["id"], BASE)]
        if cand and cand not in base:
            row["rubric"] = [{"type": "not_contains", "value": cand}]
            lost.append(row["id"])
    assert len(lost) >= 3, answers  # the trained adapter answers differently from the base
    write_jsonl(root / "data" / "golden.jsonl", rows)
    toml.write_text(toml.read_text().replace("min_pass_rate = 0.0", "min_pass_rate = 0.9"))

    blocked, text = run(pytester)
    assert blocked.ret != 0 and "tunegate: BLOCKED: golden.pass_rate" in text, text[-3000:]
    results = latest_results(root)
    assert results["task"] == {"name": "ticket-triage", "description": "support tickets"}
    assert set(results["movers"]) == set(results["verdict"]["failed_gates"]) >= {"golden.pass_rate"}
    movers = results["movers"]["golden.pass_rate"]
    assert len(movers) == 3 and {m["example_id"] for m in movers} <= set(lost)
    for m in movers:
        assert (m["candidate"].strip(), m["baseline"].strip()) == (answers[(m["example_id"], CANDIDATE)],
                                                                   answers[(m["example_id"], BASE)])
        assert m["baseline_role"] == BASE and m["question"].startswith("Golden question")

    coverage = results["coverage"]
    assert [c["suite"] for c in coverage["checked"]] == ["golden"]
    assert coverage["checked"][0]["failure_mode"] == "task quality and format"
    assert coverage["checked"][0]["evaluated"] is True and "golden.pass_rate" in coverage["checked"][0]["gates"]
    off = {c["suite"]: c for c in coverage["off"]}
    assert set(off) == {*OTHER_SUITES, "judge"}
    assert off["safety"]["reason"] == "disabled in the config (suites.safety.enabled = false)"
    assert off["diversity"]["failure_mode"] == "mode collapse"

    # The terminal: the task, what was not checked, and under the failed gate its movers; the verdict last.
    lines = blocked.outlines
    assert "tunegate: task ticket-triage" in lines
    assert any(line.startswith("tunegate: not checked: safety (") for line in lines)
    at = lines.index(next(line for line in lines if line.startswith("tunegate: golden.pass_rate FAILED")))
    assert all(lines[at + i].startswith("  asked 'Golden question") for i in (1, 2, 3)), lines[at:at + 4]
    assert "; base: " in lines[at + 1] and lines[-1].startswith("tunegate: BLOCKED: golden.pass_rate")

    run_dir = root / "reports" / results["run_id"]
    page = (run_dir / "index.html").read_text()
    assert '<strong id="task">ticket-triage</strong>' in page
    blocked_html = page.split('<section id="blocked">')[1].split("</section>")[0]
    assert page.index('<section id="blocked">') < page.index('<section id="gates">')
    assert "<code>golden.pass_rate</code>" in blocked_html
    for m in movers:
        assert html.escape(m["candidate"].strip()[:40], quote=False) in blocked_html
    assert "Not checked:" in page and "disabled in the config (suites.mmlu.enabled = false)" in page
    summary = (run_dir / "summary.md").read_text()
    assert "### Why it was blocked" in summary and "task `ticket-triage`" in summary
    assert summary.index("Why it was blocked") < summary.index("### Gates")
    assert "**Not checked:** safety" in summary
    json.dumps(results)  # (plain data all the way down)
