"""Trainer callbacks: abort on a non-finite loss, keep the loss history, print progress."""
from __future__ import annotations

import math
import sys
import time

from transformers import TrainerCallback

from harness.errors import TrainingDiverged


class NanGuard(TrainerCallback):
    """Stop the run as soon as a logged training or val loss is NaN or infinite."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDiverged(
                    f"training diverged: {key} = {value} at step {state.global_step}; "
                    "lower training.learning_rate or check the data"
                )


class LossHistory(TrainerCallback):
    """Collect (step, train loss) and (step, val loss) for the adapter metadata and the report."""

    def __init__(self) -> None:
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.val.append((state.global_step, float(logs["eval_loss"])))


class Progress(TrainerCallback):
    """One line per logged step on stderr, readable in CI logs (no progress bar redraws)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.start = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        parts = [f"step {state.global_step}/{state.max_steps}", f"{time.monotonic() - self.start:.0f}s"]
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            parts.append(f"val_loss {logs['eval_loss']:.4f}")
        if len(parts) > 2:
            print("tunegate train: " + "  ".join(parts), file=self.stream, flush=True)
