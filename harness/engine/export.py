"""Export for serving (`tunegate export`): an adapter merged into its base model by PEFT's merge_and_unload,
or a full fine-tune as it is, saved atomically as a plain model folder (safetensors, config, tokenizer)
that transformers and vLLM load without PEFT.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness import atomic
from harness.engine.models import BaseModelRef, describe, load_model
from harness.errors import TunegateError
from harness.fingerprints import adapter_fingerprint, is_full_model

EXPORT_FILE = "tunegate-export.json"  # provenance: which adapter, merged into which base
CHAMPION = "champion"


@dataclass(frozen=True)
class Artifact:
    """An adapter or full fine-tune found by `find_artifact`, with the base fingerprint it was trained on (if known)."""

    id: str
    path: Path
    base_fingerprint: str | None


def save_tokenizer(base: BaseModelRef, out_dir: Path, trust_remote_code: bool = False) -> None:
    """The base model's tokenizer, as its files define it (not the engine's padded copy), into `out_dir`."""
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(base.source, revision=base.revision, trust_remote_code=trust_remote_code
                                  ).save_pretrained(str(out_dir))


def find_artifact(spec: str, workspace: Path, registry=None) -> Artifact:
    """`--adapter`: 'champion' (the `registry`'s, the configured one: SQLite or MLflow; None when there is
    none yet), an adapter id (promoted, or in the adapter store), or a folder."""
    if spec == CHAMPION:
        champion = registry.champion() if registry else None
        if champion is None:
            raise TunegateError("--adapter champion: no adapter has been promoted yet; pass --adapter ID or PATH")
        return Artifact(champion.adapter_id, champion.path, champion.base_fingerprint)
    version = registry.version(spec) if registry else None
    if version is not None and Path(version.path).is_dir():  # a shared registry keeps only the champion here
        return Artifact(version.adapter_id, version.path, version.base_fingerprint)
    for meta_file in sorted((Path(workspace) / "adapters").glob("*/tunegate.json")):
        meta = json.loads(meta_file.read_text())
        if meta.get("adapter_id") == spec:
            return Artifact(spec, meta_file.parent, meta["base_model"]["fingerprint"])
    path = Path(spec).expanduser()
    if path.is_dir():
        meta_file = path / "tunegate.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        return Artifact(meta.get("adapter_id", f"ext-{adapter_fingerprint(path)[:12]}"), path.resolve(),
                        meta.get("base_model", {}).get("fingerprint"))
    raise TunegateError(f"--adapter {spec}: not 'champion', not an adapter id in the registry or the adapter store, "
                        "and not a folder; `tunegate registry list` shows the promoted ids")


def export_merged(artifact: Artifact, base: BaseModelRef, out: Path, dtype: str = "float32", force: bool = False,
                  trust_remote_code: bool = False) -> Path:
    """Write `artifact` merged into `base` as a standalone model folder at `out` (atomically: the folder appears
    complete or not at all). The merge is done in float32, then the weights are saved in `dtype`."""
    import torch
    from transformers import AutoModelForCausalLM


    out = Path(out).resolve()
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise TunegateError(f"--out {out}: already exists and is not empty; choose a new folder, or add --force to "
                            "replace it")
    if artifact.base_fingerprint is not None and artifact.base_fingerprint != base.fingerprint:
        raise TunegateError(f"--adapter {artifact.id}: trained on the base model {artifact.base_fingerprint}, but "
                            f"model.base is {base.source} ({base.fingerprint}); set model.base to the model it was "
                            "trained on")
    if is_full_model(artifact.path):
        model = AutoModelForCausalLM.from_pretrained(str(artifact.path), dtype=torch.float32)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(load_model(base, "float32", trust_remote_code), str(artifact.path),
                                          is_trainable=False).merge_and_unload()
    model.to(getattr(torch, dtype))
    # An existing folder is replaced only once the new one is complete (only with --force, or if it was empty).
    with atomic.build_dir(out, replace=True) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        save_tokenizer(base, tmp, trust_remote_code)
        atomic.write_json(tmp / EXPORT_FILE, {
            "adapter_id": artifact.id, "adapter_fingerprint": adapter_fingerprint(artifact.path),
            "full_fine_tune": is_full_model(artifact.path), "base_model": describe(base), "dtype": dtype,
        })
    return out
