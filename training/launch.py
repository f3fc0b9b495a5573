"""Training under `accelerate launch` (DDP, FSDP or DeepSpeed, through TRL's trainers):

    accelerate launch [--config_file fsdp.yaml] -m harness.run.launch --config tunegate.toml
    pytest suites/ --adapter <the folder it prints>

Every process runs the same adapter fixture as `pytest suites/` (data check, DPO pairs, the store);
the main process decides whether the stored adapter is reused, holds the builder lock, and writes the
folder, while the others train alongside it. The launch's process count and its FSDP / DeepSpeed /
mixed-precision settings join the store key, so its adapter is never mistaken for a one-process run's:
evaluate it with --adapter.
"""
from __future__ import annotations

import os

# The launcher's environment variables that change the trained weights (accelerate passes its config file's
# FSDP, DeepSpeed and mixed-precision settings to each process this way).
WEIGHT_ENV_PREFIXES = ("FSDP_", "ACCELERATE_DEEPSPEED", "ACCELERATE_MIXED_PRECISION", "ACCELERATE_USE_FSDP",
                       "ACCELERATE_USE_DEEPSPEED")


def launched_processes() -> int:
    """How many processes this launch runs (torchrun and accelerate set WORLD_SIZE); 1 outside a launch."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_settings() -> dict:
    """The launch's share of the adapter key: nothing for one process (keys stay as they were)."""
    if launched_processes() <= 1:
        return {}
    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(WEIGHT_ENV_PREFIXES)}
    return {"launch": {"processes": launched_processes(), "environment": env}}


def accelerator_state():
    import torch
    from accelerate import PartialState

    # As the trainer's arguments set it up (use_cpu without a GPU), so both see one distributed state.
    return PartialState(cpu=not torch.cuda.is_available())
