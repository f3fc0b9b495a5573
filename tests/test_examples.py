"""The example tasks in examples/: each is a tunegate.toml, its data and a generator, and runs by that config
alone. Their data are what their generators write and pass `tunegate data check` without a finding; and
`pytest suites/ --tunegate-config examples/<name>/...` takes each to a verdict on the tiny model, every
default suite included, with the golden suite scoring the example's own items by their own rubrics."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.store.results import validate
from tests.conftest import ROOT

pytest_plugins = ["pytester"]

EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/tunegate.toml"))
DATA = ("train.jsonl", "val.jsonl", "golden.jsonl")


def test_there_are_examples():
    assert {"intent", "release-notes"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_data_are_what_the_generator_writes(name, tmp_path):
    copy = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, copy, ignore=shutil.ignore_patterns("*.jsonl", "__pycache__"))
    subprocess.run([sys.executable, str(copy / "generate.py")], check=True, capture_output=True)
    for file in DATA:
        assert (copy / file).read_bytes() == (ROOT / "examples" / name / file).read_bytes(), \
            f"examples/{name}/{file} is stale: run python examples/{name}/generate.py"


@pytest.mark.parametrize("name", EXAMPLES)
def test_data_check_finds_nothing(name, capsys):
    code = main(["data", "check", "--config", str(ROOT / "examples" / name / "tunegate.toml")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"data check: 0 errors, 0 warnings in \d+ examples \(3 files\)", out), out


def tiny_overlay(model_dir: Path) -> str:
    """The example's config, with the tiny model and settings that keep a run to a minute: one short epoch of
    a small LoRA, and a few items from each default suite. Everything else (data, system prompt, golden set
    and its gates, which suites run) is the example's own."""
    return f"""extends = "tunegate.toml"
[model]
base = "{model_dir}"
dtype = "float32"
[training]
epochs = 1
batch_size = 8
eval_steps = 15
max_length = 192
bf16 = false
[training.lora]
r = 4
alpha = 8
target_modules = ["q_proj", "v_proj"]
[engine]
batch_size = 16
[suites.safety]
per_group = 3
max_new_tokens = 8
[suites.mmlu]
per_subject = 2
[suites.diversity]
samples = 2
max_new_tokens = 6
[suites.bias]
bbq_per_category = 4
max_new_tokens = 6
[suites.memorisation]
probes = 4
max_new_tokens = 6
"""


def rubric_types(scores: dict) -> set[str]:
    """The check types of a record's scores: `contains[Export]` -> `contains`."""
    return {name.split("[")[0] for name in scores}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_to_a_verdict_on_the_tiny_model(name, pytester, tiny_model_dir):
    """As the README says: the suites from the repository root, the example's config in its own folder."""
    root = pytester.path
    shutil.copytree(ROOT / "suites", root / "suites", ignore=shutil.ignore_patterns("__pycache__"))
    example = root / "examples" / name
    shutil.copytree(ROOT / "examples" / name, example, ignore=shutil.ignore_patterns("__pycache__"))
    (example / "tiny.toml").write_text(tiny_overlay(tiny_model_dir))

    result = pytester.runpytest_subprocess("suites", "-p", "no:cacheprovider",
                                           "--tunegate-config", f"examples/{name}/tiny.toml")
    out = "\n".join(result.outlines + result.errlines)
    assert result.ret in (0, 1), out  # 0 promoted, 1 blocked; anything else is an error, not a verdict
    assert "Traceback" not in out, out
    assert re.search(r"^tunegate: (PROMOTED sft-[0-9a-f]{12}|BLOCKED: .+)$", out, re.MULTILINE), out

    results = json.loads((example / "reports" / "latest" / "results.json").read_text())
    validate(results)
    assert results["complete"] is True and results["candidate"]["trained_now"] is True
    assert results["verdict"]["status"] == ("PROMOTED" if result.ret == 0 else "BLOCKED")
    assert results["task"]["name"] == name  # its own champion and history, apart from the demo's

    golden = {row["id"]: row for row in map(json.loads, (example / "golden.jsonl").read_text().splitlines())}
    for role in ("base", "candidate"):
        records = [r for r in results["examples"] if r["suite"] == "golden" and r["role"] == role]
        assert {r["example_id"] for r in records} == set(golden), role
        for r in records:
            item = golden[r["example_id"]]
            assert rubric_types(r["scores"]) == {check["type"] for check in item["rubric"]}, r
            assert r["slice"] == item.get("slice", {}), r
    assert {g["name"] for g in results["gates"]} >= {"golden.pass_rate", "golden.noninferior_base"}
