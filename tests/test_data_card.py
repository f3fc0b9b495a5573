"""The dataset card in results.json, the report and the summary; the training fixture refusing to train
on data errors; every adapter's training data recorded with the run."""
from __future__ import annotations

import json

from harness.curation import card
from harness.curation.checks import Settings, check_files, check_run
from harness.curation.records import read_file
from harness.engine.models import load_tokenizer_only
from harness.fingerprints import file_sha256
from harness.report import html, summary
from harness.run.candidate import refuse_to_train
from harness.run.run import Run
from harness.run.verdict import Verdict
from harness.store.registry import Registry
from harness.store.results import validate
from harness.suites import BUILTIN
from tests.curation_data import planted_project, project_config, write_jsonl
from tests.report_data import results
from tests.test_e2e_suites import TRAIN, latest_results, make_project, run
from training.store import METADATA_FILE, StoredAdapter

pytest_plugins = ["pytester"]


def planted_card(tmp_path, tiny_model_dir) -> dict:
    planted_project(tmp_path)
    session = Run(project_config(tmp_path, tiny_model_dir))
    report = check_run(session.inputs, load_tokenizer_only(str(tiny_model_dir), tmp_path / ".tunegate"))
    return card.build(report)


def test_card_counts_hashes_lengths_balance_and_findings(tmp_path, tiny_model_dir):
    c = planted_card(tmp_path, tiny_model_dir)
    train, val, golden = c["files"]
    assert (train["name"], train["role"], train["records"], train["examples"]) == ("train", "train", 23, 21)
    assert train["sha256"] == file_sha256(tmp_path / "train.jsonl") and golden["role"] == "eval"
    assert train["lengths"]["unit"] == "tokens" and train["lengths"]["n"] == 21 and train["truncated"] == 1
    assert sum(train["lengths"]["histogram"]["counts"]) == 21
    assert train["balance"] == {"meta.task": {"triage": 5, "help": 5}}  # the ten topics; planted rows have no task
    assert train["findings"] == {"schema": 2, "consistency": 2, "pii": 6, "length": 1, "duplicate": 1,
                                 "near_duplicate": 1}
    assert val["findings"] == {"leakage": 1} and golden["findings"] == {"leakage": 1}
    assert c["eval_sets"] == {"diversity": 2}
    assert (c["errors"], c["warnings"]) == (13, 3) and c["by_kind"]["leakage"] == {"error": 3}
    validate({**results(), "data_card": c})  # the committed schema accepts it


def test_report_and_summary_show_the_card(tmp_path, tiny_model_dir):
    c = planted_card(tmp_path, tiny_model_dir)
    c["files"][0]["balance"]["meta.task"]["<script>alert(1)</script>"] = 1  # values come from data: untrusted
    page = html.render({**results(), "data_card": c}, [], [])
    section = page.split('<section id="data">')[1].split("</section>")[0]
    assert "13 errors</strong>, 3 warnings" in section and '<a href="#data">' in page
    assert section.count("<svg") == 3  # a length histogram per file
    assert "max_length 256" in section and "ma*****************om" in section and "maria" not in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>alert" not in page
    for f in c["files"]:
        assert f["sha256"][:16] in section
    text = summary.render({**results(), "data_card": c})
    assert "Data check: 13 errors, 3 warnings (schema 2, consistency 2" in text
    older = html.render(results(), [], [])  # results written before the card and adapter data were recorded
    assert "no data check in this run" in older and "trained on" not in older


def test_warnings_alone_never_stop_training(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", TRAIN + TRAIN[:1])
    report = check_files([read_file(tmp_path / "t.jsonl")], Settings())
    assert [f.kind for f in report.findings] == ["schema"]  # the repeated id is an error ...
    write_jsonl(tmp_path / "t.jsonl", TRAIN + [{**TRAIN[0], "id": "again"}])
    report = check_files([read_file(tmp_path / "t.jsonl")], Settings())
    assert [f.kind for f in report.findings] == ["duplicate"]  # ... the repeated example a warning
    refuse_to_train(report)  # does not raise


def test_the_training_fixture_refuses_data_with_errors(pytester, tiny_model_dir, repo_root):
    """A full `pytest suites/` run: the data check finds PII in train.jsonl and the adapter fixture stops
    the run before anything trains; the run is recorded as BLOCKED with the card in its report."""
    root = make_project(pytester, tiny_model_dir, repo_root)
    bad = {**TRAIN[3], "messages": [{"role": "user", "content": "Bill card 4111 1111 1111 1111 for it"},
                                    TRAIN[3]["messages"][1]]}
    write_jsonl(root / "data" / "train.jsonl", [*TRAIN[:3], bad, *TRAIN[4:]])
    result, out = run(pytester)
    assert result.ret == 1, out
    assert "data check: 1 errors (pii), not training; first: " in out and "train.jsonl:4: error [pii] credit card" in out
    assert "tunegate: BLOCKED: data check: 1 errors (pii)" in out
    assert not (root / ".tunegate" / "adapters").exists()  # nothing trained
    res = latest_results(root)  # schema-validated
    assert res["verdict"]["status"] == "BLOCKED" and res["candidate"] is None
    assert res["data_card"]["errors"] == 1 and res["data_card"]["files"][0]["sha256"] == res["data"]["train"]
    page = (root / "reports" / "latest" / "index.html").read_text()
    assert "train.jsonl:4" in page and "41***************11" in page


def test_results_record_the_data_each_adapter_was_trained_on(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", TRAIN)
    off = "".join(f"[suites.{s}]\nenabled = false\n" for s in BUILTIN)
    (tmp_path / "tunegate.toml").write_text(f'[data]\ntrain = "x.jsonl"\nval = "x.jsonl"\n{off}')
    session = Run(tmp_path / "tunegate.toml")
    champ_dir = tmp_path / "champ"
    champ_dir.mkdir()
    (champ_dir / "adapter_config.json").write_text("{}")
    (champ_dir / METADATA_FILE).write_text(json.dumps({"data": {"train": "c" * 64, "train_examples": 9}}))
    Registry(tmp_path / ".tunegate" / "registry", session.config.task_name).promote(
        adapter_id="sft-old", fingerprint="f", source=champ_dir, run_id="r0", base_fingerprint="b",
        config_hash="h", data={}, metrics={}, gates=[], reason="test")
    assert session.champion.adapter_id == "sft-old"
    session._adapter = StoredAdapter("sft-new", tmp_path, "g", {"data": {"train": "d" * 64, "train_examples": 12}})
    session.__dict__["data_check"] = check_files([read_file(tmp_path / "x.jsonl")], Settings())
    res = session.build_results(Verdict("BLOCKED", reason="test"), complete=False)
    validate(res)
    assert res["candidate"]["data"] == {"train": "d" * 64, "train_examples": 12}
    assert res["champion"]["data"] == {"train": "c" * 64, "train_examples": 9}
    assert res["data_card"]["files"][0]["examples"] == 12 and res["data"]["train"] == file_sha256(tmp_path / "x.jsonl")
    session._adapter = StoredAdapter("ext-1", tmp_path, "g", {})  # trained elsewhere: unknown, not made up
    assert session.build_results(Verdict("BLOCKED", reason="test"), complete=False)["candidate"]["data"] is None
    page = html.render(session.build_results(Verdict("BLOCKED", reason="t"), complete=False), [], [])
    assert "candidate trained on: <span class=\"absent\">unknown (trained elsewhere)</span>" in page
    assert "champion trained on: train <code>cccccccccc</code>" in page
