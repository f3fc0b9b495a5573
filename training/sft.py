"""Supervised fine-tuning on TRL's SFTTrainer (LoRA, QLoRA or every weight), and the one training entry
point, `train_lora`, which also runs DPO (training/dpo.py) through the same loop.

Examples become conversational prompt-completion records, so the loss covers only the final
assistant turn. Val loss is computed during training, early stopping keeps the best checkpoint,
and a non-finite loss aborts the run.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.config import TrainingConfig
from harness.data import Example
from harness.errors import TrainingDiverged, TunegateError
from harness.models import BaseModelRef, load_model
from training.callbacks import LossGuard, LossHistory, Progress


@dataclass(frozen=True)
class TrainReport:
    """What a training run leaves behind besides the adapter weights."""

    train_loss: list[tuple[int, float]]
    val_loss: list[tuple[int, float]]
    best_val_loss: float | None
    steps: int
    seconds: float
    reward_margins: dict[str, list[tuple[int, float]]] | None = None  # DPO: {"train": ..., "val": ...}


def to_prompt_completion(examples: list[Example], system_prompt: str | None) -> list[dict]:
    """TRL's conversational prompt-completion shape: the loss is on the completion only."""
    return [{"prompt": ex.prompt(system_prompt), "completion": [ex.messages[-1]]} for ex in examples]


def sft_config(cfg: TrainingConfig, output_dir: Path, has_val: bool):
    """Map tunegate's training section onto TRL's SFTConfig."""
    from trl import SFTConfig

    return SFTConfig(max_length=cfg.max_length, **trainer_args(cfg, output_dir, has_val, SFTConfig))


def trainer_args(cfg: TrainingConfig, output_dir: Path, has_val: bool, config_class) -> dict:
    """The TrainingArguments every method shares (`config_class`: TRL's SFTConfig or DPOConfig)."""
    import torch

    # transformers 5 renamed gradient_checkpointing; TRL still defaults the old name to True.
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in config_class.__dataclass_fields__ \
        else "gradient_checkpointing"
    evaluate = {"eval_strategy": "steps", "eval_steps": cfg.eval_steps} if has_val else {"eval_strategy": "no"}
    best = (
        {
            "save_strategy": "steps",
            "save_steps": cfg.eval_steps,
            "save_total_limit": 2,
            "load_best_model_at_end": True,
            "metric_for_best_model": "eval_loss",
            "greater_is_better": False,
        }
        if has_val and cfg.early_stopping
        else {"save_strategy": "no"}
    )
    return dict(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of total steps
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=cfg.bf16,
        # transformers refuses bf16 without an accelerator unless told the CPU is intended.
        use_cpu=not torch.cuda.is_available(),
        logging_steps=max(1, min(10, cfg.eval_steps)),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        save_only_model=True,
        **{checkpointing: cfg.gradient_checkpointing},
        **evaluate,
        **best,
    )


def lora_config(cfg: TrainingConfig):
    """PEFT's LoraConfig for 'lora' and 'qlora'; None for 'full', which trains every weight."""
    from peft import LoraConfig

    if cfg.finetune == "full":
        return None
    return LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=list(cfg.lora.target_modules),
        task_type="CAUSAL_LM",
    )


def build_trainer(model, tokenizer, train: list[Example], val: list[Example], cfg: TrainingConfig, output_dir: Path,
                  system_prompt: str | None = None, callbacks: list = ()):
    """The SFT trainer exactly as the fixture runs it (benchmarks/sft_throughput.py times this one)."""
    from datasets import Dataset
    from transformers import PrinterCallback

    trainer = _trainer_class()(
        model=model,
        args=sft_config(cfg, output_dir, has_val=bool(val)),
        train_dataset=Dataset.from_list(to_prompt_completion(train, system_prompt)),
        eval_dataset=Dataset.from_list(to_prompt_completion(val, system_prompt)) if val else None,
        processing_class=right_padding(tokenizer),
        peft_config=lora_config(cfg),
        callbacks=prepare(cfg, bool(val), callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def right_padding(tokenizer):
    """A copy of `tokenizer` that pads on the right, as training does. A copy: the caller's (an engine's,
    which pads on the left for generation) would otherwise answer differently after a training run."""
    import copy

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.padding_side = "right"
    return tokenizer


def prepare(cfg: TrainingConfig, has_val: bool, callbacks) -> list:
    """What every trainer needs before it is built; returns its callbacks, early stopping added when asked for.
    (Remove transformers' PrinterCallback from the built trainer: Progress prints one plain line per log.)"""
    import datasets
    from transformers import EarlyStoppingCallback

    datasets.disable_progress_bars()  # Progress prints one plain line per logged step instead
    callbacks = list(callbacks)
    if has_val and cfg.early_stopping:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    return callbacks


def load_for_training(base: BaseModelRef, cfg: TrainingConfig, trust_remote_code: bool = False):
    """The base model as training.finetune needs it: 4-bit for 'qlora', else float32 (bf16 runs as autocast)."""
    if cfg.finetune == "qlora":
        from training.qlora import load_4bit

        return load_4bit(base, cfg, trust_remote_code)
    return load_model(base, "float32", trust_remote_code)


def train_lora(
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
    folder with its tokenizer ('full'). `train` and `val` are Examples for SFT, PreferencePairs for DPO. (The
    name predates the other methods; the kill tests and the store call it by it.)"""
    import time

    started = time.monotonic()
    model = load_for_training(base, cfg, trust_remote_code)
    history = LossHistory()
    callbacks = [LossGuard(cfg.max_loss_rise), history, Progress()]
    # Inside out_dir: a killed run's checkpoints go with its unfinished folder, which the next builder sweeps.
    # One fixed name: the processes of a multi-process launch share out_dir, and must share the checkpoints.
    ckpt = Path(out_dir) / ".checkpoints"
    if cfg.method == "dpo":
        from training.dpo import build_dpo_trainer

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
            from training.export import save_tokenizer

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


def _trainer_class():
    """SFTTrainer; on a CPU, with the model's own loss instead of TRL's fused LM head. The fused head
    projects in tiles to save the memory of the full logits, which a GPU run may need, but here it
    makes each step ~40% slower for the same loss (benchmarks/sft_throughput.py)."""
    import torch
    from transformers import Trainer
    from trl import SFTTrainer

    if torch.cuda.is_available():
        return SFTTrainer

    class CPUSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    return CPUSFTTrainer


def _finite(x: float) -> bool:
    import math

    return math.isfinite(x)
