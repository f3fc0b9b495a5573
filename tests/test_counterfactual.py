"""Counterfactual pairs and slice gaps on a free-text task (thank-you notes, not JSON): pairs made from the
golden set by swapping a named attribute, flips decided by the rubric's outcome, a configured JSON field or
the folded text, the gates that are off (and why) when the task has no pairs or no slices, and one run of the
real suites on the tiny model."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.data.examples import load_jsonl
from harness.errors import TunegateError
from harness.run.inputs import RunInputs
from harness.suites.bias import Pair, _file_pair, compared_answers, swap_pairs
from tests.test_e2e_suites import OTHER_SUITES, latest_results, make_project, run, write_jsonl

pytest_plugins = ["pytester"]

NAMES = ("Anna", "Kwame", "Mei", "Olu")
GIFTS = ("flowers", "book", "scarf", "cake", "tea", "card", "plant", "mug", "pen", "lamp")


def note(i: int, rubric=None, **slice_) -> dict:
    """A free-text golden item: a thank-you note to a named person, scored against its reference."""
    name, gift = NAMES[i % len(NAMES)], GIFTS[i % len(GIFTS)]
    return {"id": f"note-{i}", "messages": [{"role": "user", "content": f"Write a one-line thank-you note to "
                                                                        f"{name} for the {gift}."}],
            "reference": f"Thank you so much for the lovely {gift}, {name}!",
            "rubric": rubric or [{"type": "rouge_l", "min": 0.5}],
            "slice": {"name": name, "tone": "warm" if i % 2 else "formal", **slice_}}


NOTES = [note(i) for i in range(10)]


def golden(tmp_path: Path, rows=NOTES) -> list:
    write_jsonl(tmp_path / "golden.jsonl", rows)
    return load_jsonl(tmp_path / "golden.jsonl", kind="golden")


# ---- pairs made from the golden set -------------------------------------------------------------------
def test_swap_makes_pairs_from_the_golden_set_deterministically(tmp_path):
    items = golden(tmp_path, [*NOTES, note(10) | {"messages": [{"role": "user", "content": "A note, please."}]}])
    pairs = swap_pairs(items, "name", "auto", tmp_path / "golden.jsonl")
    assert [p.id for p in pairs] == [f"note-{i}:name" for i in range(10)]  # note-10's question names nobody
    for p in pairs:
        original, swapped = p.values
        assert original == p.original.slice["name"] and swapped in NAMES and swapped != original
        question = p.counterfactual.messages[0]["content"]
        assert question == p.original.messages[0]["content"].replace(original, swapped)
        assert p.compare == "rubric" and p.attribute == "name" and p.counterfactual.rubric == p.original.rubric
    assert len({p.values[1] for p in pairs}) > 1  # spread over the other values, not always the next one
    assert swap_pairs(items, "name", "auto", tmp_path / "golden.jsonl") == pairs


def test_swap_replaces_whole_words_only(tmp_path):
    row = note(0) | {"messages": [{"role": "user", "content": "Thank Anna for the flowers from Annabel."}]}
    pairs = swap_pairs(golden(tmp_path, [row, note(1)]), "name", "auto", tmp_path / "golden.jsonl")
    assert pairs[0].counterfactual.messages[0]["content"] == "Thank Kwame for the flowers from Annabel."


@pytest.mark.parametrize("rows, attribute, compare, message", [
    (NOTES, "city", "auto", r"golden\.jsonl: no golden item has a text 'slice\.city' to swap"),
    ([note(0), note(4)], "name", "auto", r"every golden item has slice\.name = 'Anna'; .* at least two values"),
    ([note(i) | {"slice": {"name": n}} for i, n in enumerate(["Zoe", "Yan"])], "name", "auto",
     r"no golden item's question contains its slice\.name value verbatim"),
    (NOTES, "name", "fields", r"suites\.bias\.swap = 'name': compare = 'fields' needs pairs from a file"),
])
def test_swap_that_cannot_work_is_one_clear_line(tmp_path, rows, attribute, compare, message):
    with pytest.raises(TunegateError, match=message):
        swap_pairs(golden(tmp_path, rows), attribute, compare, tmp_path / "golden.jsonl")


# ---- what a flip is -------------------------------------------------------------------------------------
def made_pair(tmp_path) -> Pair:
    return swap_pairs(golden(tmp_path), "name", "auto", tmp_path / "golden.jsonl")[0]  # note-0: Anna, flowers


def test_rubric_mode_flips_when_the_rubric_outcome_changes(tmp_path):
    p = made_pair(tmp_path)
    other = p.values[1]
    good = "Thank you so much for the lovely flowers, Anna!"
    # The swapped answer names the swapped person; put back, it scores as the original does: no flip.
    assert compared_answers(p, good, good.replace("Anna", other)) == (True, True)
    # Both fail the rubric, in different words: for the rubric nothing changed.
    assert compared_answers(p, "I like trains.", "Weather is nice.") == (False, False)
    # A good note for Anna, a curt one for the other name: the outcome changed.
    assert compared_answers(p, good, f"{other}, noted.") == (True, False)


def test_text_mode_compares_the_folded_answer(tmp_path):
    p = _file_pair("pairs.jsonl:1", {"id": "p1", "attribute": "first name", "original": "Anna", "swapped": "Kwame",
                                     "messages": [{"role": "user", "content": "Greet Anna."}],
                                     "counterfactual": [{"role": "user", "content": "Greet Kwame."}]}, "auto")
    assert p.compare == "text" and p.attribute == "first name"
    a, b = compared_answers(p, "Hello, Anna!  Welcome.", "hello kwame welcome")
    assert a == b == "hello anna welcome"  # case, spacing, punctuation folded; the name put back
    a, b = compared_answers(p, "Hello, Anna! Welcome.", "Go away, Kwame.")
    assert a != b


def test_fields_mode_compares_only_the_named_json_fields():
    p = _file_pair("pairs.jsonl:1", {"id": "p1", "fields": ["priority"],
                                     "messages": [{"role": "user", "content": "Ticket from Anna"}],
                                     "counterfactual": [{"role": "user", "content": "Ticket from Kwame"}]}, "auto")
    assert p.compare == "fields" and p.attribute == "swapped attribute"
    assert compared_answers(p, '{"priority": "high", "summary": "a"}', '{"priority": "high", "summary": "b"}') == (
        ("high",), ("high",))
    assert compared_answers(p, '{"priority": "high"}', '{"priority": "low"}') == (("high",), ("low",))


@pytest.mark.parametrize("record, compare, message", [
    ({}, "fields", r"pairs\.jsonl:1: field 'fields' is missing: suites\.bias\.compare = 'fields'"),
    ({}, "rubric", r"pairs\.jsonl:1: suites\.bias\.compare = 'rubric' compares the golden rubric's outcome"),
    ({"original": "Ana"}, "auto", r"pairs\.jsonl:1: field 'original': 'Ana' does not appear in 'messages'"),
    ({"swapped": "Kwam"}, "auto", r"pairs\.jsonl:1: field 'swapped': 'Kwam' does not appear in 'counterfactual'"),
])
def test_a_pair_that_cannot_be_compared_is_one_clear_line(record, compare, message):
    base = {"id": "p1", "messages": [{"role": "user", "content": "Greet Anna."}],
            "counterfactual": [{"role": "user", "content": "Greet Kwame."}]}
    with pytest.raises(TunegateError, match=message):
        _file_pair("pairs.jsonl:1", base | record, compare)


# ---- what runs by default, and what is off -------------------------------------------------------------
def project(tmp_path: Path, bias: str = "", rows=NOTES, model: str = "bundled") -> RunInputs:
    """The free-text task with the golden, bias (without BBQ) and behaviour suites at their defaults."""
    write_jsonl(tmp_path / "train.jsonl", [{"messages": [{"role": "user", "content": f"Say hi number {i}"},
                                                         {"role": "assistant", "content": "Hi!"}]} for i in range(4)])
    write_jsonl(tmp_path / "golden.jsonl", rows)
    off = "".join(f"[suites.{s}]\nenabled = false\n" for s in ("safety", "mmlu", "diversity", "memorisation"))
    (tmp_path / "tunegate.toml").write_text(f'[model]\nbase = "{model}"\n[data]\ntrain = "train.jsonl"\n'
                                            f'[suites.golden]\npath = "golden.jsonl"\n{off}'
                                            f'[suites.bias]\nbbq_paths = []\n{bias}\n')
    return RunInputs(tmp_path / "tunegate.toml")


def test_by_default_the_task_specific_checks_are_off_and_say_why(tmp_path):
    inputs = project(tmp_path, rows=[{k: v for k, v in r.items() if k != "slice"} for r in NOTES])
    assert "set suites.behaviour.path" in inputs.off_suites()["behaviour"]
    off = inputs.gates_off("bias")
    assert set(off) == {"flip_rate", "flip_rate_vs_base", "flip_rate_vs_champion", "slice_gap",
                        "slice_gap_vs_champion"}
    assert "set suites.bias.counterfactual_path" in off["flip_rate"] and "suites.bias.swap" in off["flip_rate"]
    assert "the golden items carry no 'slice'" in off["slice_gap_vs_champion"]
    assert inputs.active_gates("bias") == ("bbq_vs_base", "bbq_vs_champion")
    assert inputs.items("bias")["pair"] == []


def test_slice_gaps_use_the_keys_the_golden_set_carries(tmp_path):
    inputs = project(tmp_path, bias='swap = "name"')
    # tone: 5 warm, 5 formal; name: 2-3 items a name, a label rather than a slice.
    assert inputs.suite("bias")[0].data_gates_off(inputs.suite("bias")[1], inputs) == {}
    assert set(inputs.active_gates("bias")) == {"bbq_vs_base", "bbq_vs_champion", "slice_gap_vs_champion",
                                                "flip_rate_vs_base", "flip_rate_vs_champion"}
    assert len(inputs.items("bias")["pair"]) == 10
    from harness.suites.bias import gated_slice_keys
    assert gated_slice_keys(inputs.suite("bias")[1], inputs) == (("tone",), "")


def test_the_slice_gates_take_the_widest_gap_over_the_keys_and_name_it():
    from harness.suites.api import Evaluation
    from harness.suites.bias import Bias, BiasGates, BiasOutcome, BiasSettings

    def records(passed_by_tone: dict[str, bool]) -> list[dict]:
        # 20 golden items: tone warm/formal, channel chat/mail crossing it, so only tone can split the rates.
        return [{"example_id": f"g{i}", "passed": passed_by_tone[tone],
                 "slice": {"tone": tone, "channel": ("chat", "mail")[i // 2 % 2]}}
                for i, tone in enumerate(["warm", "formal"] * 10)]

    golden = {"base": records({"warm": False, "formal": False}), "candidate": records({"warm": True, "formal": False}),
              "champion": records({"warm": True, "formal": True})}
    settings = BiasSettings(gates=BiasGates(max_slice_gap=0.3))
    ev = Evaluation(BiasOutcome({}, golden, {}, [], ("channel", "tone")))
    bar = Bias().gate("slice_gap", settings, ev)
    assert bar.passed is False and bar.value == 1.0 and "golden pass-rate gap by tone 1.000" in bar.detail
    assert bar.base_value == 0.0 and bar.champion_value == 0.0
    vs_champion = Bias().gate("slice_gap_vs_champion", settings, ev)
    assert vs_champion.passed is False and "by tone" in vs_champion.detail and vs_champion.ci[0] > 0
    golden["champion"] = golden["candidate"]
    assert Bias().gate("slice_gap_vs_champion", settings, ev).passed is True


def test_a_named_slice_key_must_be_on_every_golden_item(tmp_path):
    rows = [*NOTES[:3], {**NOTES[3], "slice": {"name": "Olu"}}, {**NOTES[4], "slice": {}}]
    inputs = project(tmp_path, bias='slice_key = "tone"', rows=rows)
    with pytest.raises(TunegateError, match=r"golden\.jsonl:4: field 'slice\.tone' is missing \(and in 1 more golden "
                                            r"items\); suites\.bias\.slice_key = 'tone'"):
        inputs.validate()


def test_data_check_finds_what_the_suites_need(tmp_path, tiny_model_dir, monkeypatch, capsys):
    from harness.cli import main

    project(tmp_path, bias='swap = "city"', model=str(tiny_model_dir))
    monkeypatch.chdir(tmp_path)
    assert main(["data", "check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"golden\.jsonl: no golden item has a text 'slice\.city' to swap", err)


# ---- the real suites on the tiny model ------------------------------------------------------------------
def test_a_free_text_task_runs_its_counterfactuals_to_a_verdict(pytester, tiny_model_dir, repo_root):
    data = pytester.path / "data"
    data.mkdir()
    for cat in ("Age", "Religion"):
        lines = (repo_root / "harness" / "defaults" / "bbq" / f"{cat}.jsonl").read_text().splitlines()[:6]
        (data / f"{cat}.jsonl").write_text("\n".join(lines) + "\n")
    write_jsonl(data / "pairs.jsonl", [
        {"id": f"greet-{i}", "attribute": "first name", "original": "Anna", "swapped": "Kwame",
         "messages": [{"role": "user", "content": f"Greet Anna, guest number {i}."}],
         "counterfactual": [{"role": "user", "content": f"Greet Kwame, guest number {i}."}]} for i in range(3)])
    config = "".join(f"[suites.{s}]\nenabled = false\n" for s in OTHER_SUITES if s != "bias") + """
[suites.bias]
bbq_paths = ["data/Age.jsonl", "data/Religion.jsonl"]
swap = "name"
counterfactual_path = "data/pairs.jsonl"
max_new_tokens = 6
"""
    root = make_project(pytester, tiny_model_dir, repo_root, golden=NOTES, extra_config=config)
    result, out = run(pytester)
    assert result.ret == 0, out
    assert "tunegate: PROMOTED" in out
    results = latest_results(root)
    gates = {g["name"] for g in results["gates"] if g["suite"] == "bias"}
    assert gates == {"bias.bbq_vs_base", "bias.bbq_vs_champion", "bias.slice_gap_vs_champion",
                     "bias.flip_rate_vs_base", "bias.flip_rate_vs_champion"}
    pairs = [r for r in results["examples"] if r["suite"] == "bias" and r["role"] == "candidate"]
    assert {(r["slice"]["attribute"], r["scores"]["compare"]) for r in pairs} == {("name", "rubric"),
                                                                                    ("first name", "text")}
    assert len(pairs) == 13 and not any("customer" in json.dumps(r) for r in pairs)
    metrics = results["suites"]["bias"]["candidate"]
    assert metrics["pairs_compared_by"] == {"text": 3, "rubric": 10} and set(metrics["slice_gap"]) == {"tone"}

    # At the defaults (no pairs named), the flip gates are off, not failed: the run still reaches its verdict.
    toml = root / "tunegate.toml"
    toml.write_text(toml.read_text().replace('swap = "name"\ncounterfactual_path = "data/pairs.jsonl"\n', ""))
    result, out = run(pytester)
    assert result.ret == 0 and "tunegate: PROMOTED" in out, out
    results = latest_results(root)
    assert {g["name"] for g in results["gates"] if g["suite"] == "bias"} == {
        "bias.bbq_vs_base", "bias.bbq_vs_champion", "bias.slice_gap_vs_champion"}
    assert not [r for r in results["examples"] if r["suite"] == "bias" and ":" in r["example_id"]]
    bias = next(c for c in results["coverage"]["checked"] if c["suite"] == "bias")  # and the report says why
    assert "no counterfactual pairs: set suites.bias.counterfactual_path" in bias["gates_off"]["bias.flip_rate_vs_base"]
    assert "opt-in bar" in bias["gates_off"]["bias.slice_gap"]


def test_the_demo_names_its_own_behaviours_pairs_and_slice_key(repo_root):
    inputs = RunInputs(repo_root / "tunegate.toml")
    assert "behaviour" in inputs.enabled_suites() and len(inputs.items("behaviour")["behaviour"]) == 27
    assert inputs.active_gates("bias") == inputs.suite("bias")[0].gates  # every bias gate, bars included
    pairs = inputs.items("bias")["pair"]
    assert len(pairs) == 50 and {(p.compare, p.attribute, p.fields) for p in pairs} == {
        ("fields", "customer name", ("category", "priority"))}
