"""Trainer callbacks: abort on a non-finite or diverging loss, keep the loss history, print progress."""
from __future__ import annotations

import math
import sys
import time

from transformers import TrainerCallback

from harness.errors import TrainingDiverged


class LossGuard(TrainerCallback):
    """Stop the run as soon as a logged training or val loss is NaN or infinite, or the training loss
    climbs past `max_rise` times the first one logged: the run is diverging, and its adapter is useless."""

    def __init__(self, max_rise: float) -> None:
        self.max_rise = max_rise
        self.first: float | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key in ("loss", "eval_loss"):
            value = logs.get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDiverged(
                    f"training diverged: {key} = {value} at step {state.global_step}; "
                    "lower training.learning_rate or check the data"
                )
        loss = logs.get("loss")
        if loss is None:
            return
        if self.first is None:
            self.first = loss
        elif loss > self.max_rise * self.first:
            raise TrainingDiverged(
                f"training diverged: loss rose from {self.first:.3f} to {loss:.3f} at step {state.global_step} (over "
                f"training.max_loss_rise = {self.max_rise:g} times the first); lower training.learning_rate"
            )


class LossHistory(TrainerCallback):
    """Collect (step, train loss) and (step, val loss) for the adapter metadata and the report, and for DPO
    the reward margins (chosen minus rejected, beta-scaled log-ratios to the reference), train and val."""

    def __init__(self) -> None:
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []
        self.margins: list[tuple[int, float]] = []
        self.val_margins: list[tuple[int, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        for key, into in (("loss", self.train), ("eval_loss", self.val), ("rewards/margins", self.margins),
                          ("eval_rewards/margins", self.val_margins)):
            if key in logs:
                into.append((state.global_step, float(logs[key])))


class Progress(TrainerCallback):
    """One line per logged step on stderr, readable in CI logs (no progress bar redraws)."""

    def __init__(self, stream=None) -> None:
        # None: whatever sys.stderr is when a line is written (pytest swaps and closes its capture files,
        # so a stream taken when this module was imported may be closed by the time training logs).
        self.stream = stream
        self.start = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return  # the processes of a multi-process launch log the same (reduced) values
        logs = logs or {}
        parts = [f"step {state.global_step}/{state.max_steps}", f"{time.monotonic() - self.start:.0f}s"]
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            parts.append(f"val_loss {logs['eval_loss']:.4f}")
        if "rewards/margins" in logs:
            parts.append(f"reward_margin {logs['rewards/margins']:.4f}")
        if len(parts) > 2:
            print("tunegate train: " + "  ".join(parts), file=self.stream or sys.stderr, flush=True)
