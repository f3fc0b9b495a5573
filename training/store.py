"""Content-addressed adapter store: the same inputs reuse the stored adapter instead of training.

The key covers the base-model fingerprint, the exact training and val examples (or preference
pairs), the training config and the library versions. A folder appears under its key only once
complete (atomic rename), and `tunegate.json`, written inside before the rename, marks it as usable.
The folder holds a PEFT adapter, or a whole model for a full fine-tune: both are "adapters" here.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from harness import atomic
from harness.config import TrainingConfig
from harness.data.examples import Example, PreferencePair
from harness.engine.adapter_check import weights_file
from harness.engine.models import BaseModelRef, describe, load_tokenizer
from harness.errors import TunegateError
from harness.fingerprints import adapter_fingerprint, adapter_intact, json_sha256
from training.launch import accelerator_state, launch_settings, launched_processes

METADATA_FILE = "tunegate.json"
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate")


@dataclass(frozen=True)
class StoredAdapter:
    """An adapter on disk, ready for the engine."""

    id: str
    path: Path
    fingerprint: str
    metadata: dict
    trained_now: bool = False


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def examples_sha256(examples: list[Example] | list[PreferencePair]) -> str:
    """Hash of exactly what training sees (the conversations, or the preference pairs, in order)."""
    h = hashlib.sha256()
    for ex in examples:
        seen = ex.messages if isinstance(ex, Example) else {"prompt": ex.messages, "chosen": ex.chosen,
                                                            "rejected": ex.rejected}
        h.update(json.dumps(seen, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


# Settings added after adapters were first stored: at their defaults they are left out of the key, so an
# existing default config keeps its key (and its stored adapter).
LATER_SETTINGS = ("method", "finetune", "dpo")


def weight_settings(cfg: TrainingConfig) -> dict:
    """The training settings that can change the trained weights: the key's share of the config."""
    # max_loss_rise only guards: it changes no weight of a run it lets finish, so stored adapters stay valid.
    settings = cfg.model_dump(mode="json", exclude={"max_loss_rise"})
    defaults = TrainingConfig().model_dump(mode="json")
    for name in LATER_SETTINGS:
        if settings[name] == defaults[name]:
            del settings[name]
    if cfg.method != "dpo":
        settings.pop("dpo", None)  # DPO's settings change nothing in SFT
    if cfg.finetune == "full":
        del settings["lora"]  # nor LoRA's in a full fine-tune
    return settings


def adapter_key(base: BaseModelRef, train: list[Example] | list[PreferencePair], val: list, cfg: TrainingConfig,
                system_prompt: str | None) -> str:
    payload = {
        "base": base.fingerprint,
        "train": examples_sha256(train),
        "val": examples_sha256(val),
        "training": weight_settings(cfg),
        "system_prompt": system_prompt,
        "libraries": library_versions(),
    }
    return json_sha256({**payload, **launch_settings()})  # nothing added to a single process's key


def artifact_id(cfg: TrainingConfig, fingerprint: str) -> str:
    """An adapter's id: how it was trained, then its fingerprint ('sft-…', 'dpo-…', 'qlora-…', 'full-…')."""
    prefix = cfg.method if cfg.finetune == "lora" else cfg.finetune if cfg.method == "sft" else \
        f"{cfg.method}-{cfg.finetune}"
    return f"{prefix}-{fingerprint[:12]}"


def adapter_folder(store: Path, key: str) -> Path:
    """Where the adapter with this key is stored."""
    return Path(store) / key[:24]


def open_external(path: Path, allow_pickle: bool = False) -> StoredAdapter:
    """An adapter trained elsewhere (--adapter PATH), in standard PEFT format, or a whole fine-tuned model folder."""
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise TunegateError(f"--adapter {path}: no such folder; pass a folder with adapter_config.json")
    weights_file(path, allow_pickle)
    meta_file = path / METADATA_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    fingerprint = adapter_fingerprint(path)
    return StoredAdapter(id=meta.get("adapter_id", f"ext-{fingerprint[:12]}"), path=path, fingerprint=fingerprint,
                         metadata=meta)


def training_data(folder: Path) -> dict | None:
    """The data an adapter folder was trained on, as recorded when it was trained (file and content
    hashes, example counts), or None for an adapter trained elsewhere."""
    meta_file = Path(folder) / METADATA_FILE
    return json.loads(meta_file.read_text()).get("data") if meta_file.is_file() else None


def _load_stored(folder: Path, say_if_corrupt: bool = True) -> StoredAdapter | None:
    """The adapter stored in `folder`, or None if there is none or its weights no longer match the
    fingerprint recorded when it was trained (nothing corrupt is reused)."""
    meta_file = folder / METADATA_FILE
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        intact = adapter_intact(folder, meta["fingerprint"])
    except (OSError, ValueError, KeyError):
        intact = False
    if not intact:
        if say_if_corrupt:
            print(f"tunegate: stored adapter {folder.name} is corrupt (its files do not match {METADATA_FILE}); "
                  "training it again", file=sys.stderr, flush=True)
        return None
    return StoredAdapter(id=meta["adapter_id"], path=folder, fingerprint=meta["fingerprint"], metadata=meta)


def get_or_train(
    store: Path,
    base: BaseModelRef,
    train: list[Example] | list[PreferencePair],
    val: list[Example] | list[PreferencePair],
    cfg: TrainingConfig,
    system_prompt: str | None,
    data_hashes: dict[str, str],
    retrain: bool = False,
    trust_remote_code: bool = False,
) -> StoredAdapter:
    """Reuse the adapter trained on the same inputs, or train it now and store it atomically. One run
    trains a given adapter at a time; a concurrent run with the same inputs waits and reuses it.
    `train` and `val` are Examples, or PreferencePairs for training.method = 'dpo'. Under a multi-process
    `accelerate launch`, every process trains and the main one stores (training/launch.py)."""
    key = adapter_key(base, train, val, cfg, system_prompt)
    final = adapter_folder(store, key)

    def build(tmp: Path, main: bool = True) -> dict | None:
        """Train into `tmp`; in the main process, also write and return the metadata."""
        # Imported here, not at the top: the trainers pull in transformers' Trainer, TRL and PEFT (seconds),
        # which a run that reuses its stored adapter, and every pytest run with the plugin installed, never needs.
        from training.train import train as train_model

        report = train_model(base, load_tokenizer(base, trust_remote_code), train, val, cfg, tmp, system_prompt,
                            trust_remote_code)
        if not main:
            return None
        fingerprint = adapter_fingerprint(tmp)
        meta = {
            "adapter_id": artifact_id(cfg, fingerprint),
            "key": key,
            "fingerprint": fingerprint,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "method": cfg.method,
            "finetune": cfg.finetune,
            "artifact": "model" if cfg.finetune == "full" else "adapter",
            "base_model": describe(base),
            "data": {**data_hashes, "train_examples": len(train), "val_examples": len(val),
                     "train_sha256": examples_sha256(train), "val_sha256": examples_sha256(val)},
            "system_prompt": system_prompt,
            "training": cfg.model_dump(mode="json"),
            "loss_history": {"train": report.train_loss, "val": report.val_loss},
            **({"reward_margins": report.reward_margins} if report.reward_margins is not None else {}),
            "best_val_loss": report.best_val_loss,
            "steps": report.steps,
            "train_seconds": report.seconds,
            "libraries": library_versions(),
        }
        atomic.write_json(tmp / METADATA_FILE, meta)
        return meta

    if launched_processes() > 1:
        return build_together(final, build, retrain)
    if not retrain and (found := _load_stored(final, say_if_corrupt=False)) is not None:
        return found  # the common case, without waiting for the lock
    with atomic.one_builder(final, "this adapter"):
        if not retrain and (found := _load_stored(final)) is not None:
            return found  # built by the run we waited for
        # A forced or corrupt rebuild replaces the old folder only once the new one is complete.
        with atomic.build_dir(final, replace=True) as tmp:
            meta = build(tmp)
    return stored_now(final, meta)


def stored_now(final: Path, meta: dict) -> StoredAdapter:
    """The adapter just trained and stored in `final`, described by its metadata."""
    return StoredAdapter(id=meta["adapter_id"], path=final, fingerprint=meta["fingerprint"], metadata=meta,
                         trained_now=True)


def build_together(final: Path, build: Callable[..., dict | None], retrain: bool):
    """The store's get-or-train in a multi-process launch. `build(tmp, main)` trains into `tmp` and, in the
    main process, writes and returns the metadata. The main process broadcasts where to train ('' to reuse
    the stored adapter), so every process takes the same branch and meets the same barriers."""
    from accelerate.utils import broadcast_object_list

    state = accelerator_state()
    if not state.is_main_process:
        where = [None]
        broadcast_object_list(where)
        if where[0]:
            build(Path(where[0]), main=False)
        state.wait_for_everyone()  # the main process has stored the folder by now
        return _load_stored(final)
    with atomic.one_builder(final, "this adapter"):
        found = None if retrain else _load_stored(final)
        if found is not None:
            broadcast_object_list([""])
            state.wait_for_everyone()
            return found
        with atomic.build_dir(final, replace=True) as tmp:
            broadcast_object_list([str(tmp)])
            meta = build(tmp)
    state.wait_for_everyone()
    return stored_now(final, meta)
