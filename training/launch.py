"""Training under `accelerate launch` (DDP, FSDP or DeepSpeed, through TRL's trainers):

    accelerate launch [--config_file fsdp.yaml] -m training.launch --config tunegate.toml
    pytest suites/ --adapter <the folder it prints>

Every process runs the same adapter fixture as `pytest suites/` (data check, DPO pairs, the store);
the main process decides whether the stored adapter is reused, holds the builder lock, and writes the
folder, while the others train alongside it. The launch's process count and its FSDP / DeepSpeed /
mixed-precision settings join the store key, so its adapter is never mistaken for a one-process run's:
evaluate it with --adapter.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

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


def _state():
    import torch
    from accelerate import PartialState

    # As the trainer's arguments set it up (use_cpu without a GPU), so both see one distributed state.
    return PartialState(cpu=not torch.cuda.is_available())


def build_together(final: Path, build: Callable[..., dict | None], retrain: bool):
    """The store's get-or-train in a multi-process launch. `build(tmp, main)` trains into `tmp` and, in the
    main process, writes and returns the metadata. The main process broadcasts where to train ('' to reuse
    the stored adapter), so every process takes the same branch and meets the same barriers."""
    from accelerate.utils import broadcast_object_list

    from harness import atomic
    from training.store import _load_stored, stored_now

    state = _state()
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


def main(argv: list[str] | None = None) -> int:
    from harness.config import config_path
    from harness.errors import TunegateError
    from harness.redaction import redact
    from harness.session import RunSession

    parser = argparse.ArgumentParser(prog="python -m training.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="config file (default: $TUNEGATE_CONFIG or ./tunegate.toml)")
    parser.add_argument("--retrain", action="store_true", help="train even if this launch's adapter is stored")
    args = parser.parse_args(argv)
    state = _state()
    try:
        adapter = RunSession(config_path(args.config, Path.cwd()), retrain=args.retrain).adapter()
    except TunegateError as e:
        if state.is_main_process:
            print(f"tunegate: error: {redact(str(e))}", file=sys.stderr)
        return 2
    if state.is_main_process:
        done = "trained" if adapter.trained_now else "reused"
        print(f"tunegate: {done} {adapter.id} with {state.num_processes} processes in {adapter.path}; "
              f"evaluate it with: pytest suites/ --adapter {adapter.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
