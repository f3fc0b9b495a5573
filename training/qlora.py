"""QLoRA's base model: its linear weights quantized to 4-bit NF4 by bitsandbytes (double quantization, as in
the QLoRA paper), prepared with PEFT's prepare_model_for_kbit_training for a LoRA adapter trained on top.

bitsandbytes is optional (`pip install tunegate[qlora]`) and imported only here, when a run asks for QLoRA.
"""
from __future__ import annotations

from harness.config import TrainingConfig
from harness.engine.models import BaseModelRef
from harness.errors import TunegateError

MISSING = ("training.finetune = 'qlora' needs bitsandbytes, which is not installed: pip install 'tunegate[qlora]' "
           "(or set training.finetune = 'lora')")


def require_bitsandbytes():
    """The bitsandbytes module, or one TunegateError line saying how to install it."""
    try:
        import bitsandbytes
    except ImportError:
        raise TunegateError(MISSING) from None
    return bitsandbytes


def quantization_config(cfg: TrainingConfig):
    """4-bit NF4 with double quantization; the matmuls run in bf16 when training.bf16 is on, else in float32."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if cfg.bf16 else torch.float32)


def load_4bit(base: BaseModelRef, cfg: TrainingConfig, trust_remote_code: bool = False):
    """The base model with 4-bit NF4 linear layers, ready for a LoRA adapter (frozen, norms in float32)."""
    bnb = require_bitsandbytes()
    import torch
    from accelerate import PartialState
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # On GPUs each process puts its whole model on its own device (PEFT's documented QLoRA + DDP setup); untested here.
    device_map = {"": PartialState().local_process_index} if torch.cuda.is_available() else None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base.source, revision=base.revision, quantization_config=quantization_config(cfg), dtype=torch.float32,
            device_map=device_map, use_safetensors=None if base.allow_pickle else True,
            trust_remote_code=trust_remote_code,
        )
    except OSError as e:
        raise TunegateError(f"model.base = {base.source!r}: cannot load: {str(e).splitlines()[0]}") from None
    keep_trainable_layout(model, bnb)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)


def keep_trainable_layout(model, bnb) -> None:
    """Keep the 4-bit layers in the layout their backward pass supports. On a CPU with AVX-512 bf16,
    bitsandbytes 0.50 converts a 4-bit layer to a faster inference layout at its first forward without
    gradients (the val loss pass), and its matmul in that layout has no backward: from then on, gradients
    stop at every 4-bit layer and the LoRA weights below it stop learning, without an error
    (tests/test_methods.py checks that they keep flowing)."""
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
