"""The candidate: an adapter from elsewhere (--adapter), the stored one trained on the same inputs,
or a new one trained now. This is the seam between the harness and `training`: the one module of the
harness that imports it (an import-linter contract), so the rest of the run sees what it names here."""
from __future__ import annotations

from pathlib import Path

from harness.config import Config
from harness.curation.checks import CheckReport
from harness.data.examples import Example
from harness.engine.models import BaseModelRef
from harness.errors import TunegateError
from training.dpo import preference_data
from training.launch import accelerator_state
from training.store import StoredAdapter, get_or_train, open_external, training_data


def refuse_to_train(check: CheckReport) -> None:
    """Raise, in one line, when the data check found errors: training on them is what it exists to stop."""
    errors = check.errors
    if errors:
        kinds = ", ".join(sorted({e.kind for e in errors}))
        raise TunegateError(f"data check: {len(errors)} errors ({kinds}), not training; first: {errors[0].line()}; "
                            "`tunegate data check` lists them all")


def get_candidate(config: Config, base: BaseModelRef, workspace: Path, splits: tuple[list[Example], list[Example]],
                  data_hashes: dict[str, str], leakage_sets: dict[str, list[Example]], check: CheckReport, *,
                  adapter_path: Path | None, retrain: bool) -> StoredAdapter:
    """--adapter PATH, else the stored adapter for these inputs, else train it (never on data the data
    check finds errors in; an adapter trained elsewhere is only described by it)."""
    if adapter_path is not None:
        return open_external(adapter_path, config.model.allow_pickle)
    refuse_to_train(check)
    train, val = splits
    if config.training.method == "dpo":  # preference pairs take the examples' place
        train, val, data_hashes = preference_data(config, leakage_sets, data_hashes)
    return get_or_train(workspace / "adapters", base, train, val, config.training, config.data.system_prompt,
                        data_hashes, retrain=retrain, trust_remote_code=config.model.trust_remote_code)


__all__ = ["StoredAdapter", "accelerator_state", "get_candidate", "open_external", "refuse_to_train", "training_data"]
