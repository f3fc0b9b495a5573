"""SFT training throughput, side by side in one run: the fixture's trainer against TRL's defaults for
the same config (the demo's data, LoRA settings, learning rate, batch size, accumulation and
max_length).

- trl-defaults: `SFTTrainer` with only those settings given (and use_cpu, without which
  transformers refuses bf16 on a CPU): TRL defaults to gradient checkpointing, bf16 autocast,
  padded batches and its fused LM head;
- tunegate: `training.sft.build_trainer`, exactly what the fixture runs: no checkpointing at this
  size, and the model's own loss on a CPU instead of TRL's fused LM head.

Each mode trains the same first steps from the same seed; the first `--warmup` steps are not timed.
Tokens are the examples' real tokens (padding not counted), so both modes are credited the same
work. Run it alone (2 cores), after `make eval` has converted the bundled model:

    .venv/bin/python benchmarks/sft_throughput.py [--steps 12] [--warmup 2]

`--config` takes another run config (its model, data and training settings); tests/test_benchmarks.py
runs one step a mode on a tiny random model that way.

Tried and dropped (2026-11-23): padding-free batches (TRL's collator, sequences kept apart by
position ids) trained no faster here: 172-196 vs 172-179 tokens/s over two runs each. The demo's
batches are ~20% padding, but SDPA on a CPU then attends over the whole concatenated row, which
costs what the padding saved.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class CountingCollator:
    """Wraps a collator to count the real tokens of every batch it builds."""

    def __init__(self, inner):
        self.inner, self.tokens = inner, []

    def __call__(self, examples):
        self.tokens.append(sum(len(e["input_ids"]) for e in examples))
        return self.inner(examples)


def measure(mode: str, steps: int, warmup: int, config: Path = ROOT / "tunegate.toml") -> dict:
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from harness.config import load_config
    from harness.data.examples import load_jsonl
    from harness.engine.models import load_model, load_tokenizer, resolve_base
    from training.sft import build_trainer, lora_config, to_prompt_completion

    cfg = load_config(config)
    ref = resolve_base(cfg.model.base, cfg.path(cfg.workspace.dir))
    tok = load_tokenizer(ref)
    train = load_jsonl(cfg.path(cfg.data.train))
    t = cfg.training

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.seconds = []

        def on_step_begin(self, args, state, control, **kw):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(time.perf_counter() - self.started)

    timer = StepTimes()
    model = load_model(ref, "float32")
    with tempfile.TemporaryDirectory() as out:
        if mode == "tunegate":
            trainer = build_trainer(model, tok, train, [], t, Path(out), cfg.data.system_prompt, [timer])
        else:
            from datasets import Dataset

            tok.padding_side = "right"
            args = SFTConfig(output_dir=out, learning_rate=t.learning_rate, num_train_epochs=t.epochs,
                             per_device_train_batch_size=t.batch_size, max_length=t.max_length, seed=t.seed,
                             gradient_accumulation_steps=t.gradient_accumulation_steps,
                             report_to="none", disable_tqdm=True,
                             use_cpu=True)  # without it transformers refuses TRL's default bf16 on a CPU
            data = Dataset.from_list(to_prompt_completion(train, cfg.data.system_prompt))
            trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                                 peft_config=lora_config(t), callbacks=[timer])
        trainer.data_collator = counter = CountingCollator(trainer.data_collator)
        trainer.args.max_steps = warmup + steps
        trainer.args.logging_steps = warmup + steps
        trainer.train()
    seconds = sum(timer.seconds[warmup:])
    micro = trainer.args.gradient_accumulation_steps  # batches per optimizer step
    tokens = sum(counter.tokens[warmup * micro : (warmup + steps) * micro])
    return {"mode": mode, "steps": steps, "seconds": round(seconds, 2), "tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1), "s_per_step": round(seconds / steps, 2),
            "checkpointing": bool(trainer.args.gradient_checkpointing)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12, help="timed optimizer steps per mode")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--repeats", type=int, default=3, help="each mode runs this many times, interleaved")
    ap.add_argument("--config", type=Path, default=ROOT / "tunegate.toml",
                    help="the run config whose model, data and training settings both modes use")
    args = ap.parse_args()
    rates: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for mode in ("trl-defaults", "tunegate"):
            row = measure(mode, args.steps, args.warmup, args.config)
            print(json.dumps(row), flush=True)
            rates.setdefault(mode, []).append(row["tokens_per_s"])
    ref = statistics.median(rates["trl-defaults"])
    print(f"\n{'mode':<14} {'runs':>4} {'min tok/s':>10} {'median tok/s':>13} {'vs TRL defaults':>16}")
    for mode, values in rates.items():
        med = statistics.median(values)
        print(f"{mode:<14} {len(values):>4} {min(values):>10.1f} {med:>13.1f} {med / ref:>15.2f}x")


if __name__ == "__main__":
    main()
