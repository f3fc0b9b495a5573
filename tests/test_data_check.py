"""`tunegate data check` on real files: every planted problem found at its file:line, and the clean
demo data and the suites' data give no finding at all."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from tests.curation_data import PII, planted_project, project_config, write_jsonl

LINE = re.compile(r"^(?P<where>\S+:\d+): (?P<severity>error|warning) \[(?P<kind>\w+)\] (?P<message>.*)$")


def findings(out: str) -> dict[tuple[str, str], str]:
    """(file:line relative to the project, kind) -> message, for every finding line printed."""
    got = {}
    for line in out.splitlines():
        if m := LINE.match(line):
            got[(m["where"].rsplit("/", 1)[-1], m["kind"])] = m["message"]
    return got


@pytest.fixture()
def project(tmp_path, tiny_model_dir, monkeypatch):
    planted = planted_project(tmp_path)
    project_config(tmp_path, tiny_model_dir, max_length=256)
    monkeypatch.chdir(tmp_path)
    return planted


@pytest.mark.parametrize("args", [[], ["train.jsonl", "val.jsonl", "golden.jsonl"]], ids=["config", "paths"])
def test_every_planted_problem_is_found_at_its_line(project, capsys, args):
    code = main(["data", "check", *args])
    out = capsys.readouterr().out
    got = findings(out)
    missing = {k: v for k, v in project.items() if k not in got}
    assert not missing, f"not found: {missing}\n{out}"
    assert set(got) == set(project), f"unexpected: {set(got) - set(project)}\n{out}"  # and nothing else
    assert len(project) == 16 and code == 1
    pii_kinds = {got[k].split(" in turn")[0] for k in project if k[1] == "pii"}
    assert pii_kinds == set(PII)  # each kind named as what it is
    # each pair names its other place (absolute paths when the files come from the config)
    assert re.match(r"duplicate of (\S*/)?train\.jsonl:2 ", got[("train.jsonl:11", "duplicate")])
    assert re.match(r"near-duplicate of (\S*/)?train\.jsonl:3 ", got[("train.jsonl:12", "near_duplicate")])
    assert re.search(r"leaks into val(\.jsonl)?: .* of (\S*/)?train\.jsonl:4 in train", got[("val.jsonl:3", "leakage")])
    assert re.search(r"leaks into golden(\.jsonl)?: .* of (\S*/)?train\.jsonl:5 in train", got[("golden.jsonl:3", "leakage")])
    assert re.search(r"leaks into diversity: .* of (\S*/)?train\.jsonl:6 ", got[("prompts.jsonl:2", "leakage")])
    assert "tokens > training.max_length 256" in got[("train.jsonl:23", "length")]
    assert "maria" not in out and "4111 1111" not in out  # PII is reported masked, never repeated
    assert re.search(r"data check: 13 errors, 3 warnings in \d+ examples \(3 files\)", out)
    assert re.search(r"train(\.jsonl)?: 1 of 21 examples over training.max_length 256 tokens", out)


def test_warnings_alone_pass_and_a_clean_file_is_silent(project, capsys):
    rows = [json.loads(line) for line in Path("train.jsonl").read_text().splitlines()[:12]]
    write_jsonl(Path("dups.jsonl"), rows)
    assert main(["data", "check", "dups.jsonl", "--no-suites"]) == 0  # a duplicate and a near-duplicate: warnings
    out = capsys.readouterr().out
    assert "0 errors, 2 warnings" in out
    write_jsonl(Path("clean.jsonl"), rows[:10])
    assert main(["data", "check", "clean.jsonl", "--no-suites"]) == 0
    out = capsys.readouterr().out
    assert not findings(out) and "0 errors, 0 warnings in 10 examples" in out


def test_the_demo_data_and_the_suites_data_give_no_false_alarm(repo_root, monkeypatch, capsys):
    """The acceptance bar: the project's own config (demo train, val and golden; leakage against every
    suite's data, MMLU included) finds nothing, with the bundled model's tokenizer."""
    monkeypatch.chdir(repo_root)
    assert main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert not findings(out), out
    assert "data check: 0 errors, 0 warnings in 595 examples (3 files)" in out
    assert re.search(r"train: 0 of 435 examples over training.max_length 384 tokens \(longest \d+\)", out)
    for suite in ("safety", "mmlu", "diversity", "bias", "behaviour"):
        assert re.search(rf"{suite} \(\d+\)", out)


@pytest.mark.parametrize("argv, message", [
    (["data", "check", "missing.jsonl"], "missing.jsonl: file not found"),
    (["data", "check", "empty.jsonl"], "empty.jsonl: no examples; the file is empty"),
])
def test_unreadable_files_are_one_line_usage_errors(project, capsys, argv, message):
    open("empty.jsonl", "w").close()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
