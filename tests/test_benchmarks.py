"""Smoke tests of benchmarks/: each script runs as a real process, on a tiny random model or with its
smallest settings, and must exit 0 and print the lines that carry its figures. The figures' values are
not checked (a tiny model's speed and accuracy mean nothing); a benchmark that crashes, or stops
printing a figure, fails here. The bundled model is never trained: only data_check_10k.py touches it,
for its tokenizer, as `tunegate data check` does."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_e2e_suites import ALWAYS, TRAIN, VAL, golden_rows, tiny_toml, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds a script may take here (each takes 10-60 s on 2 cores): a hang fails, not stalls CI
NUM = r"\d+(?:\.\d+)?"

def bench(script: str, *args) -> str:
    """Run benchmarks/<script> with `args` from the repository root; its stdout, once it exited 0. The
    repository is first on the path, so the script imports this checkout's modules."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=TIMEOUT)
    code = done.returncode
    assert code == 0, f"{script} exited {code}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-6000:]}"
    return done.stdout


def lines(out: str, *patterns: str) -> list[re.Match]:
    """One match per pattern, each a whole line of `out`."""
    found = [re.search(f"^{p}$", out, re.M) for p in patterns]
    missing = [p for p, m in zip(patterns, found) if m is None]
    assert not missing, f"no line matching {missing[0]!r} in:\n{out}"
    return found


def tiny_project(folder: Path, model_dir: Path) -> Path:
    """A project on the tiny model: 4 training examples (one optimizer step), 3 golden items, the golden
    suite alone; returns its config."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", TRAIN[:4])
    write_jsonl(folder / "val.jsonl", VAL[:2])
    write_jsonl(folder / "golden.jsonl", golden_rows(ALWAYS, n=3))
    config = folder / "tunegate.toml"
    config.write_text(tiny_toml(model_dir, "", max_new_tokens=4, eval_steps=1))
    return config


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model with non-zero weights, so that merging it changes the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("tiny-adapter")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "adapter"])
def test_generation(with_adapter, tiny_model_dir, tiny_adapter):
    extra = ["--adapter", tiny_adapter] if with_adapter else []
    out = bench("generation.py", "--model", tiny_model_dir, *extra, "--prompts", 4, "--naive-prompts", 2,
                "--batch-size", 2, "--max-new-tokens", 4, "--repeats", 1)
    lines(out, r"mode\s+runs\s+min tok/s\s+median tok/s",
          *(rf"{re.escape(mode)}\s+1\s+{NUM}\s+{NUM}" for mode in
            ("naive (1 at a time)", "hf-batched (batch 2)", "tunegate (batch 2)", "ceiling (full batch)")),
          rf"tunegate / naive: {NUM}x \(goal >= 5x\); tunegate / ceiling: {NUM}% \(goal >= 70%\)")


def test_sft_throughput(tiny_model_dir, tmp_path):
    config = tiny_project(tmp_path / "project", tiny_model_dir)
    out = bench("sft_throughput.py", "--config", config, "--steps", 1, "--warmup", 0, "--repeats", 1)
    rows = [json.loads(line) for line in out.splitlines() if line.startswith('{"mode"')]
    assert [r["mode"] for r in rows] == ["trl-defaults", "tunegate"], out
    for row in rows:
        assert {"steps", "seconds", "tokens", "tokens_per_s", "s_per_step", "checkpointing"} <= set(row), row
    lines(out, r"mode\s+runs\s+min tok/s\s+median tok/s\s+vs TRL defaults",
          *(rf"{mode}\s+1\s+{NUM}\s+{NUM}\s+{NUM}x" for mode in ("trl-defaults", "tunegate")))


def test_mmlu_parity(tiny_model_dir):
    """tunegate's side (its own process: model load, 1-shot prompts, scoring, predictions) on 2 questions of
    each subject in both formats. lm-eval's side runs only where this interpreter can import lm_eval (it
    lives in its own environment, not in CI's); without it the script must say it skipped that side."""
    out = bench("mmlu_parity.py", "--lm-eval-python", sys.executable, "--model", tiny_model_dir,
                "--per-subject", 2, "--shots", 1, "--batch-size", 4)
    model = re.escape(tiny_model_dir.name)
    lines(out, rf"model {model}, {NUM} questions, 1-shot, float32, batch 4, 1 run\(s\) a side;.*",
          r"format\s+metric\s+agree\s+tunegate acc\s+lm-eval acc\s+tunegate s\s+lm-eval s\s+speed-up")
    time_s = rf"{NUM} \({NUM}\)"
    metrics = [("letter", "acc"), ("cloze", "acc"), ("cloze", "acc_norm")]
    if importlib.util.find_spec("lm_eval") is None:
        lines(out, r"lm-eval side skipped: .* cannot import lm_eval .*",
              *(rf"{fmt}\s+{metric}\s+-\s+{NUM}\s+-\s+{time_s}\s+-\s+-" for fmt, metric in metrics))
    else:
        assert "lm-eval side skipped" not in out
        lines(out, *(rf"{fmt}\s+{metric}\s+\d+/\d+\s+{NUM}%\s+{NUM}\s+{NUM}\s+{time_s}\s+{time_s}\s+{NUM}x"
                     for fmt, metric in metrics),
              *(rf"{fmt}\s+largest log-likelihood difference \S+" for fmt in ("letter", "cloze")))


def test_end_to_end_first_scenario(tiny_model_dir, tmp_path):
    """The first scenario (fresh workspace: train one step, run the golden suite on base and candidate) as
    `pytest suites/` in its own process, on the tiny project."""
    config = tiny_project(tmp_path / "project", tiny_model_dir)
    out = bench("end_to_end.py", "--config", config, "--stop-after", "first")
    rows = [json.loads(line) for line in out.splitlines() if line.startswith('{"scenario"')]
    assert [r["scenario"] for r in rows] == ["first"], out
    row = rows[0]
    assert {"seconds", "peak_rss_mb", "trained_s", "computed", "cache_hits", "generated_tokens"} <= set(row), row
    assert re.match(r"(PROMOTED|BLOCKED|NOT PROMOTED)\b", row["verdict"]), row
    lines(out, r"scenario\s+runs\s+min s\s+median s\s+peak RSS MB\s+computed per role \(last run\)",
          rf"first\s+1\s+{NUM}\s+{NUM}\s+\d+\s+.+")
    assert not list((tmp_path / "project" / ".tunegate").glob("e2e-*")), "the temporary workspace was left behind"


def test_data_check_10k():
    """`tunegate data check` as the benchmark runs it, on the smallest file that holds the planted problems."""
    out = bench("data_check_10k.py", "--n", 310)
    lines(out, r"tunegate: data check: \d+ errors, \d+ warnings in \d+ examples .*",
          rf"benchmark: `tunegate data check` on 310 examples took {NUM} s wall-clock \(exit [01]; the bar is 60 s\)")
