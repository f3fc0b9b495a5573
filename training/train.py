"""The one training entry point: load the base as training.finetune needs it, build the SFT or DPO
trainer, train with the callbacks (divergence guard, loss history, progress), and save the adapter, or
a whole model folder for a full fine-tune."""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.config import TrainingConfig
from harness.data.examples import Example
from harness.engine.export import save_tokenizer
from harness.engine.models import BaseModelRef, load_model
from harness.errors import TrainingDiverged, TunegateError
from training.callbacks import LossGuard, LossHistory, Progress
from training.dpo import build_dpo_trainer
from training.qlora import load_4bit
from training.sft import build_trainer


@dataclass(frozen=True)
class TrainReport:
    """What a training run leaves behind besides the adapter weights."""

    train_loss: list[tuple[int, float]]
    val_loss: list[tuple[int, float]]
    best_val_loss: float | None
    steps: int
    seconds: float
    reward_margins: dict[str, list[tuple[int, float]]] | None = None  # DPO: {"train": ..., "val": ...}


def load_for_training(base: BaseModelRef, cfg: TrainingConfig, trust_remote_code: bool = False):
    """The base model as training.finetune needs it: 4-bit for 'qlora', else float32 (bf16 runs as autocast)."""
    if cfg.finetune == "qlora":
        return load_4bit(base, cfg, trust_remote_code)
    return load_model(base, "float32", trust_remote_code)


def train(
    base: BaseModelRef,
    tokenizer,
    train: list[Example],
    val: list[Example],
    cfg: TrainingConfig,
    out_dir: Path,
    system_prompt: str | None = None,
    trust_remote_code: bool = False,
) -> TrainReport:
    """Train what `cfg` asks for and save it into `out_dir`: a PEFT adapter ('lora', 'qlora'), or a whole model
    folder with its tokenizer ('full'). `train` and `val` are Examples for SFT, PreferencePairs for DPO."""
    started = time.monotonic()
    model = load_for_training(base, cfg, trust_remote_code)
    history = LossHistory()
    callbacks = [LossGuard(cfg.max_loss_rise), history, Progress()]
    # Inside out_dir: a killed run's checkpoints go with its unfinished folder, which the next builder sweeps.
    # One fixed name: the processes of a multi-process launch share out_dir, and must share the checkpoints.
    ckpt = Path(out_dir) / ".checkpoints"
    if cfg.method == "dpo":
        trainer = build_dpo_trainer(model, tokenizer, train, val, cfg, ckpt, system_prompt, callbacks)
    else:
        trainer = build_trainer(model, tokenizer, train, val, cfg, ckpt, system_prompt, callbacks)
    check_nothing_lost_to_truncation(trainer, len(train), len(val), cfg)
    result = trainer.train()
    if not _finite(result.training_loss):
        raise TrainingDiverged(
            f"training diverged: mean loss = {result.training_loss}; lower training.learning_rate"
        )
    save_artifact(trainer, base, cfg, Path(out_dir), trust_remote_code)
    if trainer.accelerator.is_main_process:
        shutil.rmtree(ckpt, ignore_errors=True)
    best = trainer.state.best_metric
    return TrainReport(
        train_loss=history.train,
        val_loss=history.val,
        best_val_loss=float(best) if best is not None else None,
        steps=trainer.state.global_step,
        seconds=round(time.monotonic() - started, 1),
        reward_margins={"train": history.margins, "val": history.val_margins} if cfg.method == "dpo" else None,
    )


def save_artifact(trainer, base: BaseModelRef, cfg: TrainingConfig, out_dir: Path, trust_remote_code: bool) -> None:
    """Save the trained adapter, or the whole model with its tokenizer ('full'), into `out_dir`: by the main
    process only, and once every process is done with the checkpoints."""
    acc = trainer.accelerator
    # Weights sharded across processes (FSDP, DeepSpeed ZeRO-3) are gathered by all of them; one process
    # holds them all already, and saves exactly as it always has.
    gathered = {"state_dict": acc.get_state_dict(trainer.model_wrapped)} if acc.num_processes > 1 else {}
    if acc.is_main_process:
        trainer.model.save_pretrained(str(out_dir), safe_serialization=True, **gathered)
        if cfg.finetune == "full":
            save_tokenizer(base, out_dir, trust_remote_code)  # the folder is then a model any server loads
        else:
            canonical_adapter_config(out_dir / "adapter_config.json")
    acc.wait_for_everyone()


def check_nothing_lost_to_truncation(trainer, n_train: int, n_val: int, cfg: TrainingConfig) -> None:
    """TRL drops the examples whose prompt alone fills max_length (nothing of the answer would be left to
    learn). Say how many went, and stop with one line if a whole split went, instead of a sampler error."""
    for split, dataset, given in (("training", trainer.train_dataset, n_train), ("val", trainer.eval_dataset, n_val)):
        kept = len(dataset) if dataset is not None else 0
        if kept == 0 and given:
            raise TunegateError(f"{split} data: every example's prompt fills training.max_length = {cfg.max_length} "
                                "tokens, leaving no answer to learn; raise training.max_length or shorten the prompts "
                                "(data.system_prompt included)")
        if kept < given:
            print(f"tunegate train: {given - kept} of {given} {split} examples dropped: their prompt fills "
                  f"training.max_length = {cfg.max_length} tokens", file=sys.stderr, flush=True)


def canonical_adapter_config(path: Path) -> None:
    """Rewrite a saved adapter_config.json with sorted keys and sorted name lists. PEFT keeps
    target_modules in a set and writes it in an order that changes with each process's string
    hashing, so the same training gave a different file, fingerprint and adapter id in every process."""
    config = json.loads(path.read_text())
    for key, value in config.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            config[key] = sorted(value)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _finite(x: float) -> bool:
    return math.isfinite(x)
