"""The stores `[registry]` selects: this workspace's SQLite files (one machine), or MLflow, shared by
every machine. Both kinds have the same methods, and both are one task's: the config's `task_name`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.store.history import History
from harness.store.history_mlflow import MlflowHistory
from harness.store.registry import Registry
from harness.store.registry_mlflow import MlflowRegistry

if TYPE_CHECKING:
    from harness.config import Config


def open_registry(config: Config, workspace: Path) -> Registry | MlflowRegistry:
    """The registry `[registry]` selects: this workspace's SQLite one, or the MLflow one every machine
    shares. Both have the same methods; the MLflow one keeps a verified local copy of the champion."""
    if config.registry.backend == "mlflow":
        return MlflowRegistry.connect(config.registry, workspace, config.task_name)
    return Registry.in_workspace(workspace, config.task_name)


def open_history(config: Config, workspace: Path) -> History | MlflowHistory:
    """The history store `[registry]` selects: this workspace's SQLite file, or the MLflow experiment
    every machine shares. Both have the same methods."""
    if config.registry.backend == "mlflow":
        return MlflowHistory.connect(config.registry, workspace, config.path(config.workspace.reports),
                                     config.task_name)
    return History.in_workspace(workspace, config.task_name)
