"""Content fingerprints (sha256) of files and JSON-able values, for cache keys and provenance."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks (model weights can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def json_sha256(value: object) -> str:
    """sha256 of a canonical JSON rendering (sorted keys), stable across runs and machines."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def is_full_model(folder: Path) -> bool:
    """Whether `folder` holds a whole model (config.json and safetensors weights: a full fine-tune) rather than a
    PEFT adapter (adapter_config.json)."""
    folder = Path(folder)
    return not (folder / "adapter_config.json").exists() and (folder / "config.json").is_file()


def full_weight_files(folder: Path) -> list[Path]:
    """A whole model's safetensors files (one, or the shards of a large model), in name order."""
    return sorted(Path(folder).glob("*.safetensors"))


def adapter_fingerprint(folder: Path) -> str:
    """sha256 over an artifact's config and weights, for cache keys and the registry: a PEFT adapter's, or a whole
    model's for a full fine-tune (its tokenizer files left out: they change no weight)."""
    folder = Path(folder)
    if is_full_model(folder):
        files = [folder / "config.json", *full_weight_files(folder)]
        if len(files) == 1:
            raise FileNotFoundError(f"{folder}: no *.safetensors beside config.json")
    else:
        weights = folder / "adapter_model.safetensors"
        if not weights.exists() and (folder / "adapter_model.bin").exists():
            weights = folder / "adapter_model.bin"  # a pickle file, loaded only when model.allow_pickle is set
        files = [folder / "adapter_config.json", weights]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()


def adapter_intact(folder: Path, fingerprint: str) -> bool:
    """Whether the adapter in `folder` still has the files it was fingerprinted with (none missing)."""
    try:
        return adapter_fingerprint(folder) == fingerprint
    except OSError:
        return False
