"""Shared fixtures for tunegate's own tests: the repo root and a tiny random model."""
from pathlib import Path

import pytest

from tests.tiny import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), ROOT)


@pytest.fixture(scope="session")
def tiny_ref(tiny_model_dir):
    from harness.engine.models import resolve_base

    return resolve_base(str(tiny_model_dir), tiny_model_dir.parent / "ws")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_ref):
    from harness.engine.models import load_tokenizer

    return load_tokenizer(tiny_ref)


@pytest.fixture(autouse=True)
def _no_ci_step_summary(monkeypatch):
    """Runs made by tests must not append their summaries to the real CI job's step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
