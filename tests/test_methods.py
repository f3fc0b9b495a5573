"""Training methods on the tiny model: QLoRA, full fine-tuning and DPO each give an artifact that the real
suites evaluate end to end, and `tunegate export` writes merged weights that answer as the engine does."""
from __future__ import annotations

import json
import sys

import pytest

from harness.config import TrainingConfig, load_config
from harness.data.examples import load_jsonl, load_pairs
from harness.engine.models import BaseModelRef
from harness.errors import TunegateError
from harness.fingerprints import adapter_intact, json_sha256
from tests.conftest import ROOT
from tests.test_e2e_suites import TRAIN, VAL, latest_results, make_project, run, write_jsonl
from tests.test_training import CFG

pytest_plugins = ["pytester"]

PAIRS = [{"id": f"p{i}", "prompt": f"Ticket number {i} about billing {i * 7}", "chosen": '{"category": "billing"}',
          "rejected": "I like turtles."} for i in range(12)]


# Enough learning for the tiny model's answers to change, so that equal answers mean something.
STRONG = CFG.model_copy(update={"learning_rate": 2e-2, "epochs": 3, "early_stopping": False})


@pytest.fixture(scope="session")
def tiny64_dir(tmp_path_factory):
    """The tiny model, 64 wide: bitsandbytes' 4-bit layers need at least 64 input features."""
    from tests.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny64"), ROOT, hidden_size=64)


def method_project(pytester, model_dir, training: str, data: str = "", epochs: int = 1):
    """The e2e tiny project (golden suite only), with `training` and `data` lines added to those tables."""
    root = make_project(pytester, model_dir, ROOT)
    toml = root / "tunegate.toml"
    toml.write_text(toml.read_text().replace("[training]\n", f"[training]\n{training}\n", 1)
                    .replace("[data]\n", f"[data]\n{data}\n", 1).replace("epochs = 1\n", f"epochs = {epochs}\n", 1))
    return root


def golden_outputs(results: dict, role: str) -> dict[str, str]:
    return {r["example_id"]: r["output"] for r in results["examples"] if r["role"] == role}


def greedy(model_dir, conversations, max_new_tokens: int) -> list[str]:
    """Greedy answers of a plain transformers model folder, one prompt at a time (no PEFT, no engine)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for conv in conversations:
        ids = tok(tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True), add_special_tokens=False,
                  return_tensors="pt")["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return out


def export(root, capsys, *args) -> tuple[int, str]:
    """`tunegate export ...` with the project's config: exit status, and what it printed."""
    from harness.cli import main

    capsys.readouterr()
    code = main(["--config", str(root / "tunegate.toml"), "export", *args])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


# ---- config and store keys ------------------------------------------------------------------
def test_the_default_config_keeps_its_adapter_key(tmp_path, monkeypatch):
    """Keys computed by the store before the methods existed (same data, base and library versions): the
    stored adapters of default configs stay valid."""
    import training.store as store

    monkeypatch.setattr(store, "library_versions", lambda: {"torch": "2.13.0"})
    write_jsonl(tmp_path / "t.jsonl", TRAIN)
    write_jsonl(tmp_path / "v.jsonl", VAL)
    train, val = load_jsonl(tmp_path / "t.jsonl"), load_jsonl(tmp_path / "v.jsonl")
    base = BaseModelRef("/x", "sha256:abc")
    small = TrainingConfig(epochs=1, batch_size=4, lora={"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    assert store.adapter_key(base, train, val, TrainingConfig(), "Be brief.") == \
        "cae436329ee746213299cb9d7f779cb53fb6df6677a2fc8cd7b9d6dc03c4ab41"
    assert store.adapter_key(base, train, val, small, "Be brief.") == \
        "44a3c23ca3fbbea8a29dc674ab40e1b7885a1540d7e3ee04651fbbc1d16e69fb"


def test_the_key_covers_each_new_setting_where_it_changes_weights():
    from training.store import weight_settings

    def key(**update):
        return json_sha256(weight_settings(TrainingConfig(**update)))

    default = key()
    assert len({default, key(finetune="qlora"), key(finetune="full"), key(method="dpo"),
                key(method="dpo", dpo={"beta": 0.5}), key(method="dpo", dpo={"loss_type": "ipo"})}) == 6
    assert key(dpo={"beta": 0.5}) == default  # DPO's settings change nothing in SFT
    assert key(finetune="full", lora={"r": 4}) == key(finetune="full")  # nor LoRA's in a full fine-tune


def test_dpo_needs_an_adapter_and_its_pairs(tmp_path):
    (tmp_path / "tunegate.toml").write_text('[training]\nmethod = "dpo"\nfinetune = "full"\n')
    with pytest.raises(TunegateError, match=r"key 'training\.finetune': .*method 'dpo' trains a LoRA or QLoRA adapter"
                       r".*set training\.finetune = 'lora' or 'qlora'"):
        load_config(tmp_path / "tunegate.toml")
    from training.dpo import preference_data

    (tmp_path / "tunegate.toml").write_text('[training]\nmethod = "dpo"\n')
    with pytest.raises(TunegateError, match=r"^training\.method = 'dpo' needs data\.preferences.*set it in \[data\]$"):
        preference_data(load_config(tmp_path / "tunegate.toml"), {}, {})


@pytest.mark.parametrize("line, error", [
    ('{"prompt": "Hi", "chosen": "Hello"}', r"field '\(record\)': 'rejected' is a required property; each line is"),
    ('{"prompt": "Hi", "chosen": "Hello", "rejected": " Hello "}',
     r"fields 'chosen' and 'rejected' hold the same answer.*make the rejected answer the worse one"),
    ('{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}], "chosen": "a", '
     '"rejected": "b"}', r"field 'prompt': the conversation ends on a 'assistant' turn; end it with the user turn"),
    ('{"prompt": "Hi", "chosen": "   ", "rejected": "b"}', r"field 'chosen': the answer is blank"),
    ('{"prompt": "Hi", "chosen": "a", "rejected": "b", "score": 3}',
     r"field '\(record\)': Additional properties are not allowed \('score' was unexpected\)"),
    ('{"prompt": "Hi", "chosen": ["a"], "rejected": "b"}', r"field 'chosen': \['a'\] is not of type 'string'"),
    ('{"prompt": "Hi", "chosen": "a", "rejected": "b"', r"invalid JSON .*; fix or remove the line"),
    ('{"id": "p0", "prompt": "Again", "chosen": "a", "rejected": "b"}', r"field 'id': duplicate id 'p0' \(first at "),
])
def test_a_bad_pairs_line_is_one_error_naming_file_line_and_fix(tmp_path, line, error):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"id": "p0", "prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}\n' + line + "\n")
    with pytest.raises(TunegateError, match=rf"^{path}:2: {error}") as e:
        load_pairs(path)
    assert "\n" not in str(e.value)


def test_the_demo_pairs_load_and_leak_into_no_suite():
    from harness.run.run import Run
    from training.dpo import preference_data

    session = Run(ROOT / "fixtures" / "dpo" / "dpo.toml")
    train, val, hashes = preference_data(session.config, session.inputs.leakage_sets(), {})
    assert len(train) + len(val) == 60 and len(val) == 6 and "preferences" in hashes


# ---- QLoRA ------------------------------------------------------------------------------------
def test_qlora_without_bitsandbytes_says_how_to_install_it(monkeypatch):
    from training.qlora import require_bitsandbytes

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what an environment without the extra sees
    with pytest.raises(TunegateError, match=r"^training\.finetune = 'qlora' needs bitsandbytes, which is not "
                       r"installed: pip install 'tunegate\[qlora\]'"):
        require_bitsandbytes()


def test_qlora_gradients_keep_flowing_after_a_val_pass(tiny64_dir, tmp_path):
    """bitsandbytes switches a 4-bit layer to a layout without a backward at its first no-grad forward on
    this CPU (AVX-512 bf16); the loader keeps the trainable one, or every LoRA weight below would stop learning."""
    import torch
    from peft import get_peft_model

    from harness.engine.models import resolve_base
    from training.qlora import load_4bit
    from training.sft import lora_config

    cfg = CFG.model_copy(update={"finetune": "qlora"})
    model = get_peft_model(load_4bit(resolve_base(str(tiny64_dir), tmp_path), cfg), lora_config(cfg))
    assert model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.__class__.__name__ == "Params4bit"
    ids = torch.randint(0, 400, (2, 12))

    def lora_grads():
        model.zero_grad()
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        return {n: p.grad for n, p in model.named_parameters() if "lora_B" in n}  # A gets none while B is 0

    before = lora_grads()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # the val loss pass
    after = lora_grads()
    assert len(after) == 4 and all(g is not None and g.abs().sum() > 0 for g in after.values())
    assert all(torch.allclose(before[n], after[n]) for n in after)


def test_a_qlora_adapter_is_evaluated_by_the_suites(pytester, tiny64_dir):
    root = method_project(pytester, tiny64_dir, 'finetune = "qlora"\nlearning_rate = 2e-2', epochs=3)
    result, out = run(pytester)
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED qlora-[0-9a-f]{12}$"])
    results = latest_results(root)
    val_loss = results["training"]["loss_history"]["val"]
    assert results["candidate"]["trained_now"] and val_loss[-1][1] < val_loss[0][1] - 0.5
    meta = json.loads((root / results["candidate"]["path"] / "tunegate.json").read_text())
    assert meta["finetune"] == "qlora" and meta["artifact"] == "adapter"
    # Trained on 4-bit weights, merged into the full-precision base for evaluation (as it is usually served).
    assert golden_outputs(results, "candidate") != golden_outputs(results, "base")


# ---- full fine-tuning --------------------------------------------------------------------------
def test_a_full_fine_tune_is_evaluated_promoted_reused_and_exported(pytester, tiny_model_dir, capsys):
    root = method_project(pytester, tiny_model_dir, 'finetune = "full"')
    result, out = run(pytester)
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED full-[0-9a-f]{12}$"])
    first = latest_results(root)
    candidate = first["candidate"]
    files = {p.name for p in (root / candidate["path"]).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tunegate.json"} <= files
    assert "adapter_config.json" not in files
    registered = root / ".tunegate" / "registry" / "artifacts" / candidate["id"]
    assert adapter_intact(registered, candidate["fingerprint"])  # the registry's copy of the whole folder
    outputs = golden_outputs(first, "candidate")
    assert outputs != golden_outputs(first, "base")  # every weight changed, and the role switched them in

    result, out = run(pytester)  # the champion is this model: reused, every output from the cache
    assert result.ret == 0, out
    second = latest_results(root)
    assert not second["candidate"]["trained_now"] and second["engine"]["generated"] == 0

    code, text = export(root, capsys, "--adapter", "champion", "--out", str(root / "served"))
    assert code == 0, text
    golden = [json.loads(line) for line in (root / "data" / "golden.jsonl").read_text().splitlines()]
    assert greedy(root / "served", [g["messages"] for g in golden], 6) == [outputs[g["id"]] for g in golden]


def test_a_whole_model_for_another_base_is_refused_in_one_line(tiny_ref, tiny64_dir):
    from harness.engine.adapter_check import check_adapter
    from harness.engine.models import linear_shapes

    with pytest.raises(TunegateError, match=rf"^--adapter {tiny64_dir}: 'model\.layers\.0\.self_attn\.q_proj\.weight' "
                       r"has shape \[64, 64\], the base model's is \[32, 32\]: .*set model\.base to that model$"):
        check_adapter(tiny64_dir, linear_shapes(tiny_ref))


# ---- DPO -----------------------------------------------------------------------------------------
def test_a_dpo_adapter_is_evaluated_by_the_suites_and_prefers_the_chosen_answers(pytester, tiny_model_dir, tiny_ref,
                                                                                 tiny_tokenizer):
    from harness.engine.local import Engine
    from harness.engine.models import load_model

    write_jsonl(pytester.path / "pairs.jsonl", PAIRS)
    root = method_project(pytester, tiny_model_dir, 'method = "dpo"\nlearning_rate = 5e-3',
                          'preferences = "pairs.jsonl"', epochs=3)
    result, out = run(pytester)
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED dpo-[0-9a-f]{12}$"])
    results = latest_results(root)
    meta = json.loads((root / results["candidate"]["path"] / "tunegate.json").read_text())
    assert meta["method"] == "dpo" and meta["data"]["train_examples"] + meta["data"]["val_examples"] == len(PAIRS)
    train_loss, margins = meta["loss_history"]["train"], meta["reward_margins"]["train"]
    assert train_loss[0][1] == pytest.approx(0.6931, abs=1e-3)  # log 2: the adapter starts as the reference
    assert train_loss[-1][1] < train_loss[0][1] - 0.2 and margins[-1][1] > margins[0][1] + 0.5
    assert meta["loss_history"]["val"][-1][1] < 0.6  # held-out pairs too

    # Independently of TRL's bookkeeping: the engine's candidate prefers the chosen answers more than the base.
    engine = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None)
    engine.add_adapter("candidate", root / results["candidate"]["path"], results["candidate"]["fingerprint"])
    contexts = [engine.render([{"role": "user", "content": p["prompt"]}]) for p in PAIRS]

    def preference(role):
        chosen = engine.loglikelihood(role, [(c, p["chosen"]) for c, p in zip(contexts, PAIRS)])
        rejected = engine.loglikelihood(role, [(c, p["rejected"]) for c, p in zip(contexts, PAIRS)])
        return [a[0] - b[0] for a, b in zip(chosen, rejected)]

    base, candidate = preference("base"), preference("candidate")
    assert all(c > b for b, c in zip(base, candidate)), (base, candidate)


# ---- export ----------------------------------------------------------------------------------------
def test_export_writes_merged_weights_that_answer_as_the_engines_candidate(tmp_path, tiny_model_dir, tiny_ref,
                                                                        tiny_tokenizer, capsys):
    from harness.engine.local import Engine
    from harness.engine.models import load_model
    from training.store import get_or_train

    write_jsonl(tmp_path / "t.jsonl", TRAIN)
    write_jsonl(tmp_path / "v.jsonl", VAL)
    (tmp_path / "tunegate.toml").write_text(f'[model]\nbase = "{tiny_model_dir}"\n[workspace]\ndir = "ws"\n')
    adapter = get_or_train(tmp_path / "ws" / "adapters", tiny_ref, load_jsonl(tmp_path / "t.jsonl"),
                           load_jsonl(tmp_path / "v.jsonl"), STRONG, None, {})
    out = tmp_path / "served"
    code, text = export(tmp_path, capsys, "--adapter", adapter.id, "--out", str(out))
    assert code == 0, text
    assert f"tunegate: {adapter.id} merged into {tiny_model_dir}" in text
    assert {"config.json", "model.safetensors", "tokenizer.json", "tunegate-export.json"} <= {p.name for p in
                                                                                                  out.iterdir()}
    engine = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None)
    engine.add_adapter("candidate", adapter.path, adapter.fingerprint)
    prompts = [[{"role": "user", "content": f"Ticket number {i} about billing"}] for i in range(4)] + \
              [[{"role": "user", "content": "Where do I turn on 2FA?"}]]
    expected = engine.generate("candidate", prompts, 12)
    assert expected != engine.generate("base", prompts, 12)  # the adapter changes the answers
    assert greedy(out, prompts, 12) == expected

    code, text = export(tmp_path, capsys, "--adapter", str(adapter.path), "--out", str(out))
    assert code == 2 and text.strip() == (f"tunegate: error: --out {out}: already exists and is not empty; choose a "
                                          "new folder, or add --force to replace it")
    code, text = export(tmp_path, capsys, "--adapter", str(adapter.path), "--out", str(out), "--force",
                        "--dtype", "bfloat16")
    assert code == 0, text
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    code, text = export(tmp_path, capsys, "--adapter", "sft-000000000000", "--out", str(tmp_path / "x"))
    assert code == 2 and "--adapter sft-000000000000: not 'champion', not an adapter id" in text
    assert not (tmp_path / "x").exists()


# ---- accelerate launch ------------------------------------------------------------------------------
def test_an_accelerate_launch_of_two_cpu_processes_trains_an_adapter_the_suites_evaluate(pytester, tiny_model_dir,
                                                                                       tmp_path):
    import os
    import re
    import subprocess
    from pathlib import Path

    root = method_project(pytester, tiny_model_dir, "")
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS")}
    env["HF_HOME"] = str(tmp_path / "hf")  # no accelerate default config from this machine's user
    # accelerate's torchrun launcher ("--multi_gpu"); without a GPU the trainer's use_cpu joins the two
    # processes in gloo DDP (accelerate's MULTI_CPU).
    launch = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "harness.run.launch", "--config", "tunegate.toml"]
    proc = subprocess.run(launch, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"^tunegate: trained (sft-[0-9a-f]{12}) with 2 processes in (\S+); evaluate it with: "
                      r"pytest suites/ --adapter \2$", proc.stdout, re.M)
    assert found, proc.stdout
    folder = Path(found[2])
    meta = json.loads((folder / "tunegate.json").read_text())
    assert meta["steps"] == 2  # 12 examples, 4 per process and step: half the steps of one process
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no checkpoints left

    result, out = run(pytester, "--adapter", str(folder))
    assert result.ret == 0, out
    result.stdout.re_match_lines([rf"tunegate: PROMOTED {found[1]}$"])
