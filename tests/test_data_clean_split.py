"""`tunegate data clean` and `tunegate data split` on real files: the input never changes, the outputs
are what the check then finds clean, and a split is deterministic, stratified and leak-free."""
from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.curation.checks import Settings, check_paths
from tests.curation_data import PII, TOPICS, chat, write_jsonl


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture()
def dirty(tmp_path, monkeypatch) -> Path:
    """10 distinct examples, then a duplicate of the 2nd, a near-duplicate of the 3rd, and one example
    per kind of PII."""
    monkeypatch.chdir(tmp_path)
    rows = [chat(i, q, a) for i, (q, a) in enumerate(TOPICS)]
    rows.append(chat(100, TOPICS[1][0].lower(), TOPICS[1][1]))
    rows.append(chat(101, TOPICS[2][0].replace("freezes", "hangs"), TOPICS[2][1]))
    rows += [chat(110 + k, f"Please update my account details. {s}", "Thanks, noted.") for k, s in enumerate(PII.values())]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def test_clean_writes_a_copy_without_duplicates_or_pii(dirty, capsys):
    before = digest(dirty)
    assert main(["data", "clean", "train.jsonl", "--out", "clean/train.jsonl"]) == 0
    assert digest(dirty) == before  # the input is untouched
    out = capsys.readouterr().out
    assert ("kept 16 of 18 examples; dropped 1 duplicates and 1 near-duplicates; PII replaced: 1 credit_card, "
            "1 email, 1 iban, 1 ip_address, 1 phone, 1 ssn") in out
    cleaned = rows_of(Path("clean/train.jsonl"))
    assert [r["id"] for r in cleaned] == [f"ex-{i}" for i in range(10)] + [f"ex-{110 + k}" for k in range(6)]
    texts = [r["messages"][0]["content"] for r in cleaned[10:]]
    assert texts[0] == "Please update my account details. You can reach me at [EMAIL] if anything is unclear."
    assert all(any(p in t for p in ("[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[IBAN]", "[SSN]", "[IP_ADDRESS]"))
               for t in texts)
    # lines without PII are copied byte for byte
    assert Path("clean/train.jsonl").read_text().splitlines()[:10] == dirty.read_text().splitlines()[:10]
    report = check_paths([Path("clean/train.jsonl")], Settings())
    assert report.findings == []


def test_clean_never_writes_over_its_input_or_past_a_bad_line(dirty, capsys):
    before = digest(dirty)
    assert main(["data", "clean", "train.jsonl", "--out", "./train.jsonl"]) == 2
    assert "train.jsonl: is the input file; data commands never change their input" in capsys.readouterr().err
    dirty.write_text(dirty.read_text() + '{"messages": [\n')
    before = digest(dirty)
    assert main(["data", "clean", "train.jsonl", "--out", "out.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "train.jsonl:19: invalid JSON" in err and err.count("\n") == 1
    assert digest(dirty) == before and not Path("out.jsonl").exists()


def many(n: int = 200) -> list[dict]:
    """n distinct examples in 3 unbalanced tasks (60% / 30% / 10%)."""
    rnd = random.Random(3)
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar".split()
    rows = []
    for i in range(n):
        task = "help" if i % 10 < 6 else "triage" if i % 10 < 9 else "refuse"
        question = " ".join(rnd.sample(words, 8)) + f" number {i}?"
        rows.append(chat(i, question, " ".join(rnd.sample(words, 6)), meta={"task": task}))
    return rows


def test_split_is_deterministic_stratified_and_order_independent(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = many()
    write_jsonl(tmp_path / "data.jsonl", rows)
    before = digest(tmp_path / "data.jsonl")
    assert main(["data", "split", "data.jsonl", "--holdout", "0.2", "--stratify", "meta.task", "--seed", "5",
                 "--out-dir", "a"]) == 0
    assert digest(tmp_path / "data.jsonl") == before
    out = capsys.readouterr().out
    assert "a/data.train.jsonl: 160 examples; a/data.holdout.jsonl: 40 held out" in out
    assert "meta.task=help: 96 train, 24 holdout" in out and "meta.task=refuse: 16 train, 4 holdout" in out
    held = rows_of(Path("a/data.holdout.jsonl"))
    assert Counter(r["meta"]["task"] for r in held) == {"help": 24, "triage": 12, "refuse": 4}
    train_ids = {r["id"] for r in rows_of(Path("a/data.train.jsonl"))}
    assert not train_ids & {r["id"] for r in held} and len(train_ids) + len(held) == 200

    random.Random(0).shuffle(rows)  # the same examples in another order split the same way
    write_jsonl(tmp_path / "shuffled.jsonl", rows)
    assert main(["data", "split", "shuffled.jsonl", "--holdout", "0.2", "--stratify", "meta.task", "--seed", "5",
                 "--out-dir", "b"]) == 0
    assert {r["id"] for r in rows_of(Path("b/shuffled.holdout.jsonl"))} == {r["id"] for r in held}
    assert main(["data", "split", "data.jsonl", "--holdout", "0.2", "--seed", "6", "--out-dir", "c"]) == 0
    assert {r["id"] for r in rows_of(Path("c/data.holdout.jsonl"))} != {r["id"] for r in held}


def test_split_keeps_near_duplicates_on_one_side(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = many(100)
    twins = [chat(1000 + i, "Hi, Ana here. " + rows[i]["messages"][0]["content"], "ok") for i in range(30)]
    write_jsonl(tmp_path / "data.jsonl", rows + twins)
    assert main(["data", "split", "data.jsonl", "--holdout", "0.15"]) == 0
    held = rows_of(Path("data.holdout.jsonl"))
    train = rows_of(Path("data.train.jsonl"))
    assert 0.1 * 130 <= len(held) <= 0.2 * 130
    report = check_paths([Path("data.train.jsonl"), Path("data.holdout.jsonl")], Settings())
    assert [f for f in report.findings if f.kind == "leakage"] == []  # twins never straddle the split
    assert {r["id"] for r in held} & {r["id"] for r in train} == set()


@pytest.mark.parametrize("argv, message", [
    (["--holdout", "0.3"], "--holdout 0.3: must be between 0.1 and 0.2"),
    (["--stratify", "meta.region"], "data.jsonl:1: no field 'meta.region' to stratify by"),
])
def test_split_usage_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", many(20))
    assert main(["data", "split", "data.jsonl", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not Path("data.train.jsonl").exists()
