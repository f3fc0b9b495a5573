"""Determinism: the same run twice, each from scratch, gives identical verdicts, metrics, outputs and weights."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.config import load_config
from tests.test_e2e_suites import all_suites_project, latest_results, run

# Two runs are two processes, and Python randomises str hashing per process, so set orders can differ
# between them (PEFT writes LoRA target_modules from a set). Pinning two different seeds makes that
# difference certain rather than a coin toss (test_runs_hash_strings_differently checks these two order
# the target modules differently).
HASH_SEEDS = {"first": "1", "second": "3"}
TARGET_MODULES = ("q_proj", "v_proj")  # the tiny project's [training.lora] target_modules

# What legitimately differs between two runs of the same inputs, and nothing else. Everything not
# listed here, including any field added to results.json later, must be identical.
VOLATILE = {
    ("run_id",): "a new id per run (timestamp + random suffix)",
    ("started_at",): "wall clock",
    ("finished_at",): "wall clock",
    ("training", "train_seconds"): "wall-clock duration",
    ("data_card", "seconds"): "wall-clock duration",
}
# The two runs live in different folders on purpose (nothing may depend on where the project is), so each
# project's absolute folder is replaced by a placeholder in every string (adapter and data file paths).
PROJECT = "<project>"
@dataclass
class _Result:
    ret: int
    outlines: list[str]
    errlines: list[str]


class _Project:
    """Stands in for pytester in the e2e helpers (which write the project into `.path` and run pytest
    there) so that one pair of runs can serve several tests: pytester is function-scoped."""

    def __init__(self, path: Path, hash_seed: str):
        self.path = path
        path.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
        self.env.update(HOME=str(path), PYTHONHASHSEED=hash_seed)  # like pytester: no user config from $HOME

    def runpytest_subprocess(self, *args) -> _Result:
        proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=self.path, env=self.env,
                              capture_output=True, text=True)
        return _Result(proc.returncode, proc.stdout.splitlines(), proc.stderr.splitlines())

    def str_set_order(self, items) -> str:
        """How a set of these strings iterates in this project's processes."""
        code = f"print(list(set({list(items)!r})))"
        return subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True,
                              check=True).stdout


@dataclass
class _Run:
    results: dict  # results.json, normalised
    fingerprint: str  # the candidate's, as recorded
    adapter_weights: bytes  # adapter_model.safetensors
    adapter_config: dict  # adapter_config.json


def _run_fresh(folder: Path, name: str, tiny_model_dir, repo_root) -> _Run:
    """Every suite, in a new project folder and workspace, without a val file."""
    project = _Project(folder / name, HASH_SEEDS[name])
    root = all_suites_project(project, tiny_model_dir, repo_root)
    toml = root / "tunegate.toml"
    text = toml.read_text()
    assert 'val = "data/val.jsonl"\n' in text and f"target_modules = {json.dumps(list(TARGET_MODULES))}" in text
    toml.write_text(text.replace('val = "data/val.jsonl"\n', ""))
    (root / "data" / "val.jsonl").unlink()
    result, out = run(project)
    assert result.ret == 0, out
    results = latest_results(root)
    adapter = Path(results["candidate"]["path"])
    fingerprint = results["candidate"]["fingerprint"]
    return _Run(results=_normalise(results, {str(root): PROJECT}),
                fingerprint=fingerprint, adapter_weights=(adapter / "adapter_model.safetensors").read_bytes(),
                adapter_config=json.loads((adapter / "adapter_config.json").read_text()))


def _normalise(value, replace: dict[str, str], path: tuple = ()):
    if path in VOLATILE:
        return "<volatile>"
    if isinstance(value, dict):
        return {k: _normalise(v, replace, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, replace, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
    return value


def _differences(a, b, path: tuple = ()):
    """Where two JSON values differ, as (path, a, b). Floats must be equal to the last bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            yield from _differences(a.get(key, "<missing>"), b.get(key, "<missing>"), (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _differences(x, y, (*path, i))
    elif type(a) is not type(b) or a != b:
        yield ".".join(map(str, path)), str(a)[:200], str(b)[:200]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_model_dir, repo_root) -> tuple[_Run, _Run]:
    folder = tmp_path_factory.mktemp("determinism")
    first, second = (_run_fresh(folder, name, tiny_model_dir, repo_root) for name in HASH_SEEDS)
    return first, second


def _assert_covers_real_data(results: dict) -> None:
    """Every suite ran and scored items, training and sampling happened: the comparison is not vacuous."""
    from harness.config import Config
    from harness.suites import BUILTIN as ALL

    SUITES = {s: m for s, m in ALL.items() if getattr(Config().suites, s).enabled}  # the judge needs a server: off by default
    assert results["complete"] is True and results["verdict"]["status"] == "PROMOTED"
    assert results["candidate"]["trained_now"] is True  # trained in this run, not reused
    assert results["engine"]["cache_hits"] == 0 and results["engine"]["generated"] > 0
    data = results["candidate"]["data"]
    assert "val" not in results["data"]  # no val file was read ...
    assert (data["train_examples"], data["val_examples"]) == (10, math.ceil(12 * 0.1))  # ... the split was computed
    history = results["training"]["loss_history"]
    assert history["train"] and history["val"]
    assert set(results["suites"]) == set(SUITES)
    for suite, by_role in results["suites"].items():
        assert by_role.get("base") and by_role.get("candidate"), suite
    assert {g["name"] for g in results["gates"]} == {f"{s}.{g}" for s, suite in SUITES.items() for g in suite.gates}
    assert any(g["p_value"] is not None for g in results["gates"]) and any(g["ci"] for g in results["gates"])
    records = results["examples"]
    assert {(r["suite"], r["role"]) for r in records} == {(s, role) for s in SUITES for role in ("base", "candidate")}
    assert all(r["scores"] for r in records if r["suite"] != "behaviour")
    sampled = [r for r in records if r["suite"] == "diversity"]
    assert sampled and all(r["output"].count("\n---\n") == 2 for r in sampled)  # 3 samples a prompt
    outputs = {(r["suite"], r["example_id"], r["role"]): r["output"] for r in records}
    # the adapter changes some answers, so equal candidate outputs also speak for equal training
    assert any(outputs[(s, i, "base")] != o for (s, i, role), o in outputs.items() if role == "candidate")


def test_same_run_twice_from_scratch_gives_identical_results(two_runs):
    first, second = two_runs
    _assert_covers_real_data(first.results)
    _assert_covers_real_data(second.results)
    differences = list(_differences(first.results, second.results))
    assert not differences, "\n".join(f"{p}: {a!r} != {b!r}" for p, a, b in differences[:25])


def test_same_training_twice_gives_the_same_adapter_files_and_fingerprint(two_runs):
    first, second = two_runs
    assert first.adapter_weights == second.adapter_weights
    assert first.adapter_config == second.adapter_config
    assert first.fingerprint == second.fingerprint


def test_runs_hash_strings_differently(tmp_path):
    """The premise of HASH_SEEDS: PEFT's set of target modules is written in a different order by each run's
    process, which gave each retraining a new fingerprint before tunegate sorted the saved config."""
    orders = {_Project(tmp_path / name, seed).str_set_order(TARGET_MODULES) for name, seed in HASH_SEEDS.items()}
    assert len(orders) == 2, orders


def test_leaving_out_data_val_computes_the_split(tmp_path):
    from harness.run.run import Run
    from tests.test_e2e_suites import TRAIN, write_jsonl

    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    (tmp_path / "tunegate.toml").write_text('[data]\ntrain = "train.jsonl"\nval_fraction = 0.25\n')
    assert load_config(tmp_path / "tunegate.toml").data.val is None
    train, val = Run(tmp_path / "tunegate.toml").inputs.splits
    assert (len(train), len(val)) == (9, 3) and not {e.id for e in train} & {e.id for e in val}
