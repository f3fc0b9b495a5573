"""Training on the tiny model: PEFT output, metadata, content-addressed reuse, divergence guard."""
import json
import math

import pytest

from harness.config import TrainingConfig
from harness.data.examples import load_jsonl
from harness.errors import TrainingDiverged
from tests.test_e2e_suites import TRAIN, VAL, write_jsonl
from training.sft import to_prompt_completion
from training.store import adapter_key, get_or_train

CFG = TrainingConfig(epochs=1, batch_size=4, eval_steps=2, max_length=64, bf16=False,
                     lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})


@pytest.fixture()
def data(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", TRAIN)
    write_jsonl(tmp_path / "val.jsonl", VAL)
    return load_jsonl(tmp_path / "train.jsonl"), load_jsonl(tmp_path / "val.jsonl")


def test_train_store_and_reuse(tmp_path, tiny_ref, data):
    train, val = data
    store = tmp_path / "adapters"
    a = get_or_train(store, tiny_ref, train, val, CFG, "Be brief.", {"train": "sha"})
    assert a.trained_now
    assert {"adapter_config.json", "adapter_model.safetensors", "tunegate.json"} <= {p.name for p in a.path.iterdir()}
    meta = json.loads((a.path / "tunegate.json").read_text())
    assert meta["base_model"]["fingerprint"] == tiny_ref.fingerprint
    assert meta["data"]["train"] == "sha" and meta["data"]["train_examples"] == len(train)
    assert meta["training"]["learning_rate"] == CFG.learning_rate
    assert meta["loss_history"]["train"] and meta["loss_history"]["val"]
    assert all(math.isfinite(v) for _, v in meta["loss_history"]["val"])
    assert set(meta["libraries"]) >= {"torch", "transformers", "peft", "trl"}
    assert json.loads((a.path / "adapter_config.json").read_text())["r"] == 4

    again = get_or_train(store, tiny_ref, train, val, CFG, "Be brief.", {"train": "sha"})
    assert not again.trained_now and again.fingerprint == a.fingerprint and again.path == a.path

    forced = get_or_train(store, tiny_ref, train, val, CFG, "Be brief.", {"train": "sha"}, retrain=True)
    assert forced.trained_now and forced.path == a.path
    leftovers = sorted(p.name for p in store.iterdir() if p.suffix != ".lock")  # the lock file stays, empty
    assert leftovers == [a.path.name]  # swapped in place, no leftovers


def test_a_corrupt_stored_adapter_is_trained_again_and_a_killed_builds_leftovers_are_swept(tmp_path, tiny_ref, data,
                                                                                        capsys):
    train, val = data
    store = tmp_path / "adapters"
    a = get_or_train(store, tiny_ref, train, val, CFG, None, {})
    weights = a.path / "adapter_model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-64] + bytes(64))  # same size, last values zeroed: only the hash can tell
    killed = store / f".{a.path.name}.x1y2z3.tmp"  # what a run killed mid-training leaves behind
    (killed / ".checkpoints-abc").mkdir(parents=True)

    again = get_or_train(store, tiny_ref, train, val, CFG, None, {})
    assert again.trained_now and again.path == a.path
    assert "is corrupt" in capsys.readouterr().err
    assert weights.read_bytes() == good  # training is deterministic: the same weights again
    assert not killed.exists()


def test_key_changes_with_every_input(tiny_ref, data):
    train, val = data
    k = adapter_key(tiny_ref, train, val, CFG, None)
    assert k == adapter_key(tiny_ref, train, val, CFG, None)
    assert k != adapter_key(tiny_ref, train[1:], val, CFG, None)
    assert k != adapter_key(tiny_ref, train, val, CFG.model_copy(update={"learning_rate": 5e-3}), None)
    assert k != adapter_key(tiny_ref, train, val, CFG, "system")


def test_loss_is_on_the_final_assistant_turn_only(data):
    train, _ = data
    rec = to_prompt_completion(train[:1], "Be brief.")[0]
    assert rec["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert [m["role"] for m in rec["completion"]] == ["assistant"]


def test_a_nan_loss_aborts_training_and_keeps_no_adapter(tmp_path, tiny_model_dir, data):
    """A base model whose weights hold a NaN (a damaged checkpoint) gives a NaN loss at the first step."""
    import shutil

    from safetensors.torch import load_file, save_file

    from harness.engine.models import resolve_base

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"][0] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    train, val = data
    store = tmp_path / "adapters"
    with pytest.raises(TrainingDiverged, match=r"training diverged: (loss|eval_loss) = nan at step \d+; lower "):
        get_or_train(store, resolve_base(str(broken), tmp_path), train, val, CFG, None, {})
    assert [p.name for p in store.iterdir() if p.suffix != ".lock"] == []  # nothing kept, no leftovers


def test_a_diverging_loss_aborts_training_and_keeps_no_adapter(tmp_path, tiny_model_dir, tiny_tokenizer, data):
    """A base model that already knows the answers (the tiny one, fitted to the training texts first) has
    a low loss, which a wild learning rate sends up within a step or two."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.engine.models import resolve_base

    train, val = data
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    batch = tiny_tokenizer([tiny_tokenizer.apply_chat_template(list(ex.messages), tokenize=False) for ex in train],
                           return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(25):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    fitted = tmp_path / "fitted-model"
    model.save_pretrained(fitted)
    tiny_tokenizer.save_pretrained(fitted)
    store = tmp_path / "adapters"
    wild = CFG.model_copy(update={"learning_rate": 0.9, "eval_steps": 1, "warmup_ratio": 0.0, "early_stopping": False})
    with pytest.raises(TrainingDiverged, match=r"training diverged: loss rose from [\d.]+ to [\d.]+ at step \d+ \(over "
                       r"training\.max_loss_rise = 3 times the first\); lower training\.learning_rate"):
        get_or_train(store, resolve_base(str(fitted), tmp_path), train, val, wild, None, {})
    assert [p.name for p in store.iterdir() if p.suffix != ".lock"] == []


def test_cpu_trainer_loss_equals_trls_fused_head(tmp_path, tiny_ref, tiny_tokenizer, data):
    """On a CPU the fixture replaces TRL's fused LM head with the model's own loss, for speed
    (benchmarks/sft_throughput.py); on the same batch both give the same loss."""
    import torch
    from trl import SFTTrainer

    from harness.engine.models import load_model
    from training.sft import build_trainer

    train, _ = data
    trainer = build_trainer(load_model(tiny_ref, "float32"), tiny_tokenizer, train, [], CFG, tmp_path)
    assert type(trainer).compute_loss is not SFTTrainer.compute_loss
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        ours = trainer.compute_loss(trainer.model, dict(batch))
        trls = SFTTrainer.compute_loss(trainer, trainer.model, dict(batch))
    assert ours.item() == pytest.approx(trls.item(), rel=1e-5)
    assert 0 < ours.item() < 20
