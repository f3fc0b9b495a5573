from pathlib import Path

import pydantic
import pytest

from harness.config import Config, config_path, load_config
from harness.errors import TunegateError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tunegate.toml"
    p.write_text(text)
    return p


def test_default_config_loads_and_resolves_paths(repo_root):
    cfg = load_config(repo_root / "tunegate.toml")
    assert cfg.model.base == "bundled"
    assert cfg.path(cfg.data.train) == repo_root / "fixtures/demo/train.jsonl"
    assert cfg.suites.golden.gates.min_pass_rate == 0.6


def test_empty_file_gives_documented_defaults(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    assert cfg.training.lora.r == 16 and cfg.training.gradient_checkpointing is False
    assert cfg.root == tmp_path


def test_every_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(Config)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[training]\nlearnig_rate = 1e-4\n", "unknown key 'training.learnig_rate'; did you mean 'learning_rate'?"),
        ("[trainng]\nepochs = 1\n", "unknown key 'trainng'; did you mean 'training'?"),
        ("[suites.golden.gates]\nmin_pas_rate = 0.5\n", "did you mean 'min_pass_rate'?"),
        ("[training.lora]\nrank = 4\n", "unknown key 'training.lora.rank'"),
    ],
)
def test_unknown_key_names_the_nearest_valid_key(tmp_path, text, expected):
    with pytest.raises(TunegateError) as e:
        load_config(write(tmp_path, text))
    assert expected in str(e.value)
    assert str(tmp_path / "tunegate.toml") in str(e.value)


@pytest.mark.parametrize(
    "text, key",
    [
        ("[training]\nlearning_rate = -1.0\n", "training.learning_rate"),
        ("[training]\nlearning_rate = nan\n", "training.learning_rate"),
        ("[suites.golden.gates]\nmin_pass_rate = 1.5\n", "suites.golden.gates.min_pass_rate"),
        ("[training]\nlr_scheduler = 'warp'\n", "training.lr_scheduler"),
        ("[model]\ndtype = 'int3'\n", "model.dtype"),
    ],
)
def test_invalid_values_name_the_key(tmp_path, text, key):
    with pytest.raises(TunegateError, match=f"key '{key}'"):
        load_config(write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(TunegateError, match="invalid TOML"):
        load_config(write(tmp_path, "[training\n"))
    with pytest.raises(TunegateError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_path_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNEGATE_CONFIG", raising=False)
    assert config_path(None, tmp_path) == tmp_path / "tunegate.toml"
    monkeypatch.setenv("TUNEGATE_CONFIG", "/x/env.toml")
    assert config_path(None, tmp_path) == Path("/x/env.toml")
    assert config_path("opt.toml", tmp_path) == tmp_path / "opt.toml"


def test_config_is_frozen(tmp_path):
    cfg = load_config(write(tmp_path, ""))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.training.epochs = 9


def test_extends_merges_tables_and_resolves_paths_from_the_extended_config(tmp_path):
    (tmp_path / "tunegate.toml").write_text('[data]\ntrain = "data/train.jsonl"\n[training]\nepochs = 2\nseed = 5\n')
    variant = tmp_path / "variants" / "fast.toml"
    variant.parent.mkdir()
    variant.write_text('extends = "../tunegate.toml"\n[training]\nepochs = 0.5\n')
    cfg = load_config(variant)
    assert cfg.training.epochs == 0.5 and cfg.training.seed == 5  # merged key by key
    assert cfg.path(cfg.data.train) == (tmp_path / "data" / "train.jsonl").resolve()
    (tmp_path / "tunegate.toml").write_text('extends = "variants/fast.toml"\n')
    with pytest.raises(TunegateError, match="loops back"):
        load_config(variant)
