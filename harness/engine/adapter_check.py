"""Checks an adapter folder from elsewhere (`--adapter PATH`) before anything loads it: safetensors
weights (a pickle file only when allowed), a readable config and header, and LoRA weights whose
shapes fit the base model. A whole model folder (a full fine-tune) gets the same checks of its
linear weights. Each problem is one TunegateError line naming the file and the fix."""
from __future__ import annotations

import json
import re
from pathlib import Path

from harness.errors import TunegateError
from harness.fingerprints import full_weight_files, is_full_model

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
PICKLE_WEIGHTS = "adapter_model.bin"
# PEFT's key for a LoRA factor: base_model.model.<module>.lora_A.weight (or lora_B)
LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<factor>[AB])(?:\.[^.]+)?\.weight$")


def weights_file(folder: Path, allow_pickle: bool) -> Path:
    """The adapter's weights: safetensors, else a pickle file if allowed; raise naming the fix otherwise."""
    folder = Path(folder)
    if is_full_model(folder):
        if files := full_weight_files(folder):
            return files[0]
        raise TunegateError(f"--adapter {folder}: a model folder (config.json) without *.safetensors weights; save "
                            "the fine-tuned model with safe_serialization=True (pickle weights are not loaded here)")
    if (folder / WEIGHTS).is_file():
        return folder / WEIGHTS
    if (folder / PICKLE_WEIGHTS).is_file():
        if allow_pickle:
            return folder / PICKLE_WEIGHTS
        raise TunegateError(f"--adapter {folder}: only {PICKLE_WEIGHTS}, a pickle file, which can run code when loaded; "
                            "re-save the adapter as safetensors, or set model.allow_pickle = true if you trust it")
    raise TunegateError(f"--adapter {folder}: missing {WEIGHTS}; expected a PEFT adapter saved with safetensors")


def check_adapter(folder: Path, base_linears: dict[str, tuple[int, int]] | None, allow_pickle: bool = False) -> None:
    """Raise TunegateError if the adapter in `folder` cannot be loaded onto the base model whose linear
    layers are `base_linears` (module name -> (in, out) features; None skips the shape check)."""
    folder = Path(folder)
    where = f"--adapter {folder}"
    if is_full_model(folder):
        weights_file(folder, allow_pickle)
        problem = _full_model_problem(folder, base_linears)
        if problem:
            raise TunegateError(f"{where}: {problem}")
        return
    try:
        config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TunegateError(f"{where}: missing {CONFIG}; expected a PEFT adapter folder") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise TunegateError(f"{where}: {CONFIG} is not valid JSON ({e}); re-save the adapter") from None
    if not isinstance(config, dict):
        raise TunegateError(f"{where}: {CONFIG} is not a JSON object; re-save the adapter")
    weights = weights_file(folder, allow_pickle)
    if weights.name != WEIGHTS:
        return  # a pickle file's shapes cannot be read without unpickling it; PEFT checks them on load
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(weights, "pt") as f:
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except SafetensorError as e:
        raise TunegateError(f"{where}: {WEIGHTS} is damaged ({e}); copy it again or retrain the adapter") from None
    problem = _shape_problem(shapes, config, base_linears)
    if problem:
        raise TunegateError(f"{where}: {problem}")


def _shape_problem(shapes: dict[str, tuple], config: dict, base_linears: dict[str, tuple[int, int]] | None) -> str:
    rank = config.get("r") if not config.get("rank_pattern") else None  # a pattern gives modules their own rank
    for key, shape in shapes.items():
        m = LORA_KEY.match(key)
        if m is None or len(shape) != 2:
            continue
        module, factor = m["module"], m["factor"]
        key_rank = shape[0] if factor == "A" else shape[1]
        if rank is not None and key_rank != rank:
            return (f"{key} has rank {key_rank} but {CONFIG} says r = {rank}: the config and the weights do not "
                    "belong together; copy the adapter folder again")
        if base_linears is None:
            continue
        if module not in base_linears:
            return (f"{key} adapts '{module}', which the base model does not have: the adapter was trained for "
                    "another base model; set model.base to that model")
        features = base_linears[module][0] if factor == "A" else base_linears[module][1]
        got = shape[1] if factor == "A" else shape[0]
        if got != features:
            side = "input" if factor == "A" else "output"
            return (f"{key} expects {got} {side} features, the base model's '{module}' has {features}: the adapter "
                    "was trained for another base model; set model.base to that model")
    return ""


def _full_model_problem(folder: Path, base_linears: dict[str, tuple[int, int]] | None) -> str:
    """Why a whole model folder cannot stand in for the base model's weights, or "" if it can: every
    linear weight of the base must be there, with the base's shape (the engine swaps them in)."""
    from safetensors import SafetensorError, safe_open

    shapes = {}
    for path in full_weight_files(folder):
        try:
            with safe_open(path, "pt") as f:
                shapes.update({key: tuple(f.get_slice(key).get_shape()) for key in f.keys()})
        except SafetensorError as e:
            return f"{path.name} is damaged ({e}); copy it again or retrain the model"
    for module, (n_in, n_out) in (base_linears or {}).items():
        shape = shapes.get(f"{module}.weight")
        if shape is None and module == "lm_head":
            continue  # tied to the input embeddings, so saved once, under their name
        if shape is None:
            return (f"no weight for the base model's '{module}': the model is not a fine-tune of the base; set "
                    "model.base to the model it was trained from")
        if shape not in ((n_out, n_in), (n_in, n_out)):  # GPT-2's Conv1D stores its weight (in, out)
            return (f"'{module}.weight' has shape {list(shape)}, the base model's is {[n_out, n_in]}: the model is a "
                    "fine-tune of another base; set model.base to that model")
    return ""
