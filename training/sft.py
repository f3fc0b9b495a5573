"""Supervised fine-tuning on TRL's SFTTrainer (LoRA, QLoRA or every weight), and the trainer settings
DPO shares (training/dpo.py); training/train.py runs either.

Examples become conversational prompt-completion records, so the loss covers only the final
assistant turn. Val loss is computed during training, early stopping keeps the best checkpoint,
and a non-finite loss aborts the run.
"""
from __future__ import annotations

from pathlib import Path

from harness.config import TrainingConfig
from harness.data.examples import Example


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
