"""DPO on TRL's DPOTrainer: a LoRA (or QLoRA) adapter learns to prefer each pair's chosen answer over its
rejected one. The reference model is the base with the adapter switched off, which TRL does for a PEFT
model, so there is never a second copy of the model. It runs through the SFT fixture's training loop
(training.train.train): the same arguments, callbacks, divergence guard and saving.
"""
from __future__ import annotations

from pathlib import Path

from harness.config import TrainingConfig
from harness.data.examples import PreferencePair, check_leakage, load_pairs, split_train_val
from harness.errors import TunegateError
from harness.fingerprints import file_sha256
from training.sft import lora_config, prepare, right_padding, trainer_args


def to_preference_records(pairs: list[PreferencePair], system_prompt: str | None) -> list[dict]:
    """TRL's conversational preference shape: the prompt rendered by the chat template, as the engine renders it."""
    return [{"prompt": p.prompt(system_prompt),
             "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]


def dpo_config(cfg: TrainingConfig, output_dir: Path, has_val: bool):
    """Map tunegate's training section onto TRL's DPOConfig."""
    from trl import DPOConfig

    return DPOConfig(max_length=cfg.max_length, beta=cfg.dpo.beta, loss_type=[cfg.dpo.loss_type],
                     **trainer_args(cfg, output_dir, has_val, DPOConfig))


def build_dpo_trainer(model, tokenizer, train: list[PreferencePair], val: list[PreferencePair], cfg: TrainingConfig,
                      output_dir: Path, system_prompt: str | None = None, callbacks: list = ()):
    """The DPO trainer as the fixture runs it."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import DPOTrainer

    trainer = DPOTrainer(
        model=model,
        args=dpo_config(cfg, output_dir, has_val=bool(val)),
        train_dataset=Dataset.from_list(to_preference_records(train, system_prompt)),
        eval_dataset=Dataset.from_list(to_preference_records(val, system_prompt)) if val else None,
        processing_class=right_padding(tokenizer),
        peft_config=lora_config(cfg),  # never None: the config refuses method 'dpo' with finetune 'full'
        callbacks=prepare(cfg, bool(val), callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def preference_data(config, leakage_sets: dict[str, list], data_hashes: dict[str, str]):
    """The run's DPO data: data.preferences split into train and val (val_fraction, seeded by training.seed),
    refused if a pair's prompt is one of the suites' items; and `data_hashes` with the pairs file's hash added.
    `leakage_sets`: each suite's items that training must not see (RunInputs.leakage_sets())."""
    if config.data.preferences is None:
        raise TunegateError("training.method = 'dpo' needs data.preferences, a JSONL file of {\"prompt\", \"chosen\", "
                            "\"rejected\"} pairs; set it in [data]")
    path = config.path(config.data.preferences)
    pairs = load_pairs(path)
    check_leakage([p.as_example() for p in pairs], list(leakage_sets.values()))
    train, val = split_train_val(pairs, config.data.val_fraction, config.training.seed)
    return train, val, {**data_hashes, "preferences": file_sha256(path)}
