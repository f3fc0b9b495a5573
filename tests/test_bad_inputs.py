"""A corpus of bad inputs, each run through the real `pytest suites/` on a project whose workspace already
holds a champion, a cache, a history and a report. Each must end in one clear line and a usage-error exit
(or, for what the data check finds, a BLOCKED verdict), and leave everything stored exactly as it was."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.test_e2e_suites import ALWAYS, GOLDEN_ONLY, TRAIN, golden_rows, make_project
from tests.workspace_state import corrupt, lost, stored

USER_ONLY = {"messages": [{"role": "user", "content": "Where is my invoice?"}]}


def config_edit(old: str, new: str):
    def edit(p: Path, ctx) -> list[str]:
        toml = p / "tunegate.toml"
        text = toml.read_text()
        assert old in text, old
        toml.write_text(text.replace(old, new, 1))
        return []
    return edit


def edits(*steps):
    """Several edits as one case (their extra pytest args joined)."""
    def edit(p: Path, ctx) -> list[str]:
        return [arg for step in steps for arg in step(p, ctx)]
    return edit


def rewrite(rel: str, content: str | bytes, append: bool = False):
    def edit(p: Path, ctx) -> list[str]:
        path = p / rel
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes((path.read_bytes() if append else b"") + data)
        return []
    return edit


def jsonl(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


def train_row(*turns: tuple[str, str], id="bad") -> dict:
    return {"id": id, "messages": [{"role": r, "content": c} for r, c in turns]}


def golden_row(rubric, id="bad-golden") -> dict:
    return {"id": id, "messages": [{"role": "user", "content": "Is there a dark mode?"}], "rubric": rubric}


def enable(suite: str, settings: str):
    return config_edit(f"[suites.{suite}]\nenabled = false\n", f"[suites.{suite}]\nenabled = true\n{settings}\n")


def adapter_copy(p: Path, ctx) -> Path:
    """A copy of the stored champion adapter outside the project, to be damaged and passed as --adapter."""
    dst = p.parent / f"{p.name}-adapter"
    shutil.copytree(ctx.champion, dst, ignore=shutil.ignore_patterns("tunegate.json"))
    return dst


def with_adapter(damage):
    def edit(p: Path, ctx) -> list[str]:
        folder = adapter_copy(p, ctx)
        damage(folder, ctx)
        return ["--adapter", str(folder)]
    return edit


def truncate(folder: Path, ctx) -> None:
    w = folder / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def garble_header(folder: Path, ctx) -> None:
    w = folder / "adapter_model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[:8] + b"{not json" + data[17:])


def pickle_only(folder: Path, ctx) -> None:
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(folder / "adapter_model.safetensors"), folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()


def rank_mismatch(folder: Path, ctx) -> None:
    cfg = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**cfg, "r": cfg["r"] * 2}))


def unknown_module(folder: Path, ctx) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "adapter_model.safetensors")
    save_file({k.replace("q_proj", "qkv_proj"): v for k, v in weights.items()}, folder / "adapter_model.safetensors")


def other_base(folder: Path, ctx) -> None:
    shutil.rmtree(folder)
    shutil.copytree(ctx.other_adapter, folder)


def base_folder(damage):
    """A copy of the tiny base model inside a sibling folder, damaged, and the config pointed at it."""
    def edit(p: Path, ctx) -> list[str]:
        model = p.parent / f"{p.name}-model"
        shutil.copytree(ctx.model, model)
        damage(model)
        config_edit(f'base = "{ctx.model}"', f'base = "{model}"')(p, ctx)
        return []
    return edit


def pickle_weights(model: Path) -> None:
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()


def remote_code(model: Path) -> None:
    """A model whose config asks for its own code, which would leave a trace if it ever ran."""
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(model_type="tunegate-evil", architectures=["EvilForCausalLM"],
               auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilForCausalLM"})
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "evil.py").write_text(f"open({str(model / 'CODE_RAN')!r}, 'w').write('yes')\n")


def symlink_outside(p: Path, ctx) -> list[str]:
    outside = p.parent / f"{p.name}-outside.jsonl"
    shutil.copy(p / "data" / "train.jsonl", outside)
    (p / "data" / "train.jsonl").unlink()
    (p / "data" / "train.jsonl").symlink_to(outside)
    return []


def tamper_champion(p: Path, ctx) -> list[str]:
    w = next((p / ".tunegate" / "registry" / "artifacts").iterdir()) / "adapter_model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[:-4] + bytes(4))
    return []


# What the data check finds (turn order, empty turns, PII, ...) stops training with one line too, but as
# a BLOCKED run (exit 1) whose report shows the data card, so that a CI job keeps the findings.
BLOCKED = "BLOCKED: "

# (case, edit of the stocked project -> extra pytest args, the one line expected after "ERROR: ", or
# after "tunegate: " for a BLOCKED run)
CASES = [
    # data files
    ("empty train file", rewrite("data/train.jsonl", ""), r".*data/train\.jsonl: no examples; the file is empty"),
    ("UTF-16 train file", rewrite("data/train.jsonl", jsonl(*TRAIN).encode("utf-16")),
     r".*data/train\.jsonl: not UTF-8 \(byte 0\); re-save the file as UTF-8"),
    ("Latin-1 golden file", rewrite("data/golden.jsonl", json.dumps(golden_row([{"type": "contains", "value": "x"}]) | {
        "messages": [{"role": "user", "content": "Caf\u00e9?"}]}, ensure_ascii=False).encode("latin-1") + b"\n"),
     r".*data/golden\.jsonl: not UTF-8 \(byte \d+\)"),
    ("a 4 MB line that is not JSON", rewrite("data/train.jsonl", "x" * 4_000_000 + "\n", append=True),
     r".*data/train\.jsonl:13: invalid JSON \(Expecting value at column 1\); fix or remove the line"),
    ("invalid JSON", rewrite("data/train.jsonl", '{"messages": [\n', append=True), r".*data/train\.jsonl:13: invalid JSON"),
    ("a JSON array, not an object", rewrite("data/val.jsonl", "[1, 2]\n", append=True),
     r".*data/val\.jsonl:5: expected a JSON object, got list"),
    ("two user turns in a row", rewrite("data/train.jsonl", jsonl(train_row(("user", "Hi"), ("user", "Hello?"),
                                                                     ("assistant", "Hi!"))), append=True),
     BLOCKED + r"data check: 1 errors \(consistency\), not training; first: .*train\.jsonl:13: .*turn 2 is user, "
               r"expected assistant"),
    ("system turn in the middle", rewrite("data/train.jsonl", jsonl(train_row(("user", "Hi"), ("system", "Be brief."),
                                                                       ("assistant", "Hi!"))), append=True),
     BLOCKED + r"data check: .*train\.jsonl:13: .*turn 2 is a system turn"),
    ("missing assistant turn", rewrite("data/train.jsonl", jsonl(USER_ONLY), append=True),
     r".*data/train\.jsonl:13: field 'messages': the last turn must be a non-empty assistant answer"),
    ("empty user turn", rewrite("data/train.jsonl", jsonl(train_row(("user", " "), ("assistant", "Hi!"))), append=True),
     BLOCKED + r"data check: .*train\.jsonl:13: .*turn 1 \(user\) is empty"),
    ("unknown role", rewrite("data/train.jsonl", jsonl(train_row(("user", "Hi"), ("bot", "Hi!"))), append=True),
     r".*data/train\.jsonl:13: field 'messages\[1\]\.role': 'bot' is not one of"),
    ("duplicate id in train", rewrite("data/train.jsonl", jsonl(TRAIN[0] | {"messages": TRAIN[1]["messages"]}),
                                      append=True),
     r".*data/train\.jsonl:13: field 'id': duplicate id 't0' \(first at .*train\.jsonl:1\)"),
    ("duplicate id in golden", rewrite("data/golden.jsonl", jsonl(golden_row(ALWAYS, id="g-0")), append=True),
     r".*data/golden\.jsonl:6: field 'id': duplicate id 'g-0'"),
    ("golden rubric with an invalid regex", rewrite("data/golden.jsonl", jsonl(golden_row([{"type": "regex", "pattern": "(["}])),
                                                    append=True),
     r".*data/golden\.jsonl:6: field 'rubric\[0\]': .*regex"),
    ("golden rubric with an invalid JSON Schema", rewrite("data/golden.jsonl", jsonl(golden_row(
        [{"type": "json_schema", "schema": {"type": "nonsense"}}])), append=True),
     r".*data/golden\.jsonl:6: field 'rubric\[0\]': .*schema"),
    ("golden rubric of an unknown type", rewrite("data/golden.jsonl", jsonl(golden_row([{"type": "telepathy"}])),
                                                 append=True),
     r".*data/golden\.jsonl:6: field 'rubric\[0\]\.type': 'telepathy' is not one of"),
    ("golden example without a rubric", rewrite("data/golden.jsonl", jsonl(golden_row([])), append=True),
     r".*data/golden\.jsonl:6: field 'rubric'"),
    ("golden file missing", lambda p, ctx: (p / "data" / "golden.jsonl").unlink() or [],
     r".*data/golden\.jsonl: file not found"),
    ("golden question leaked into training", rewrite("data/golden.jsonl", jsonl(golden_row(ALWAYS) | {
        "id": "leak", "messages": [TRAIN[0]["messages"][0]]}), append=True),
     r".*data/golden\.jsonl:6: example 'leak' leaks: .*data/train\.jsonl:1"),
    ("safety prompt with an unknown label", lambda p, ctx: [
        rewrite("data/safety.jsonl", jsonl({"id": "s1", "prompt": "How do I bake bread?", "label": "maybe"}))(p, ctx),
        enable("safety", 'paths = ["data/safety.jsonl"]')(p, ctx)][0],
     r".*data/safety\.jsonl:1: .*label"),
    ("MMLU answer out of range", lambda p, ctx: [
        rewrite("data/mmlu.jsonl", jsonl({"id": "m1", "subject": "geo", "question": "Capital of France?",
                                          "choices": ["Paris", "Rome", "Oslo", "Bern"], "answer": 7}))(p, ctx),
        enable("mmlu", 'path = "data/mmlu.jsonl"\ndev_path = "data/mmlu.jsonl"\nshots = 0')(p, ctx)][0],
     r".*data/mmlu\.jsonl:1: .*answer"),
    # what each enabled suite needs of the task's own data, checked before training
    ("golden rubric's schema file missing", rewrite("data/golden.jsonl", jsonl(golden_row(
        [{"type": "json_schema", "schema": "answer.schema.json"}])), append=True),
     r".*data/golden\.jsonl:6: field 'rubric\[0\]': JSON Schema file not found: .*data/answer\.schema\.json; give "
     r"the 'schema' path relative to this file's folder"),
    ("bias slice key the golden items lack", enable("bias", 'bbq_paths = []\nslice_key = "plan"'),
     r".*data/golden\.jsonl:1: field 'slice\.plan' is missing \(and in 4 more golden items\); "
     r"suites\.bias\.slice_key = 'plan' gates the pass-rate gap between its values"),
    ("bias swap of an attribute the golden items lack", enable("bias", 'bbq_paths = []\nswap = "name"'),
     r".*data/golden\.jsonl: no golden item has a text 'slice\.name' to swap \(suites\.bias\.swap = 'name'\)"),
    ("bias swap of a value no question contains", enable("bias", 'bbq_paths = []\nswap = "customer"'),
     r".*data/golden\.jsonl: no golden item's question contains its slice\.customer value verbatim"),
    ("counterfactual pair without the fields to compare", lambda p, ctx: [
        rewrite("data/pairs.jsonl", jsonl({"id": "p1", "messages": [{"role": "user", "content": "Hi from Anna"}],
                                           "counterfactual": [{"role": "user", "content": "Hi from Kwame"}]}))(p, ctx),
        enable("bias", 'bbq_paths = []\ncounterfactual_path = "data/pairs.jsonl"\ncompare = "fields"')(p, ctx)][0],
     r".*data/pairs\.jsonl:1: field 'fields' is missing: suites\.bias\.compare = 'fields'"),
    ("counterfactual value not in its text", lambda p, ctx: [
        rewrite("data/pairs.jsonl", jsonl({"id": "p1", "original": "Ana", "swapped": "Kwame",
                                           "messages": [{"role": "user", "content": "Hi from Anna"}],
                                           "counterfactual": [{"role": "user", "content": "Hi from Kwame"}]}))(p, ctx),
        enable("bias", 'bbq_paths = []\ncounterfactual_path = "data/pairs.jsonl"')(p, ctx)][0],
     r".*data/pairs\.jsonl:1: field 'original': 'Ana' does not appear in 'messages'"),
    ("counterfactual file missing", enable("bias", 'bbq_paths = []\ncounterfactual_path = "data/pairs.jsonl"'),
     r".*data/pairs\.jsonl: file not found"),
    ("behaviour file missing", enable("behaviour", 'path = "data/behaviour.jsonl"'),
     r".*data/behaviour\.jsonl: file not found"),
    ("behaviour without a rubric", lambda p, ctx: [
        rewrite("data/behaviour.jsonl", jsonl({"id": "b1", "messages": [{"role": "user", "content": "Hi"}]}))(p, ctx),
        enable("behaviour", 'path = "data/behaviour.jsonl"')(p, ctx)][0],
     r".*data/behaviour\.jsonl:1: field 'rubric': a golden example needs at least one check"),
    ("prompts that fill training.max_length", config_edit("max_length = 64", "max_length = 16"),
     BLOCKED + r"training data: every example's prompt fills training\.max_length = 16 tokens, leaving no answer to "
               r"learn; raise training\.max_length"),
    # config
    ("NaN gate threshold", config_edit("min_pass_rate = 0.0", "min_pass_rate = nan"),
     r".*tunegate\.toml: key 'suites\.golden\.gates\.min_pass_rate': .*\(got nan\)"),
    ("negative gate threshold", config_edit("min_pass_rate = 0.0", "min_pass_rate = -0.1"),
     r".*tunegate\.toml: key 'suites\.golden\.gates\.min_pass_rate': Input should be greater than or equal to 0"),
    ("NaN learning rate", config_edit("epochs = 1", "epochs = 1\nlearning_rate = nan"),
     r".*tunegate\.toml: key 'training\.learning_rate': .*\(got nan\)"),
    ("negative learning rate", config_edit("epochs = 1", "epochs = 1\nlearning_rate = -0.001"),
     r".*tunegate\.toml: key 'training\.learning_rate': Input should be greater than 0"),
    ("infinite learning rate", config_edit("epochs = 1", "epochs = 1\nlearning_rate = inf"),
     r".*tunegate\.toml: key 'training\.learning_rate': .*\(got inf\)"),
    ("misspelt key", config_edit("epochs = 1", "epohcs = 1"),
     r".*tunegate\.toml: unknown key 'training\.epohcs'; did you mean 'epochs'\?"),
    ("wrong type", config_edit("epochs = 1", 'epochs = "two"'), r".*tunegate\.toml: key 'training\.epochs': .*'two'"),
    ("invalid TOML", config_edit("[training]", "[training"), r".*tunegate\.toml: invalid TOML: .*line \d+"),
    ("config not UTF-8", lambda p, ctx: rewrite("tunegate.toml", (p / "tunegate.toml").read_bytes()
                                                 + '\n# caf\u00e9\n'.encode("latin-1"))(p, ctx),
     r".*tunegate\.toml: not UTF-8 text; save the config as UTF-8"),
    ("golden file outside the project", config_edit('path = "data/golden.jsonl"', 'path = "../golden.jsonl"'),
     r".*tunegate\.toml: key 'suites\.golden\.path' = '\.\./golden\.jsonl' resolves to .*, outside the project folder"),
    ("reports outside the project", config_edit("[engine]", '[workspace]\nreports = "/tmp"\n[engine]'),
     r".*tunegate\.toml: key 'workspace\.reports' = '/tmp' resolves to /tmp, outside the project folder"),
    ("data file outside the project", config_edit('train = "data/train.jsonl"', 'train = "/etc/hostname"'),
     r".*tunegate\.toml: key 'data\.train' = '/etc/hostname' resolves to /etc/hostname, outside the project"),
    ("data file symlinked outside the project", symlink_outside,
     r".*tunegate\.toml: key 'data\.train' = 'data/train\.jsonl' resolves to .*-outside\.jsonl, outside the project"),
    # models and adapters
    ("a full fine-tune on a served engine", edits(
        config_edit("epochs = 1", 'epochs = 1\nfinetune = "full"'),
        config_edit("[engine]", '[engine]\nbackend = "openai"\n'
                                'openai = {base_url = "http://127.0.0.1:9/v1", model = "m"}')),
     r"training\.finetune = 'full' trains a whole model, which engine\.backend = 'openai' cannot load as an "
     r"adapter; evaluate it with engine\.backend = 'local', or train a LoRA adapter"),
    ("base model folder missing", config_edit("base = ", 'base = "./no-model"\n# '),
     r"model\.base = '\./no-model': no such folder"),
    ("base model with pickle weights only", base_folder(pickle_weights),
     r"model\.base = '.*-model': only pickle weights \(\.bin\), which can run code when loaded; .*model\.allow_pickle"),
    ("base model that needs its own code", base_folder(remote_code),
     r"model\.base = '.*-model': the model needs its own code to load, .*set model\.trust_remote_code = true"),
    ("adapter folder missing", lambda p, ctx: ["--adapter", str(p / "no-such-adapter")],
     r"--adapter .*no-such-adapter: no such folder"),
    ("adapter for another base model", with_adapter(other_base),
     r"--adapter .*: .*lora_A\.weight expects 48 input features, the base model's .* has 32: the adapter was trained "
     r"for another base model"),
    ("adapter config and weights disagree", with_adapter(rank_mismatch),
     r"--adapter .*: .*lora_A\.weight has rank 4 but adapter_config\.json says r = 8"),
    ("adapter for modules the base lacks", with_adapter(unknown_module),
     r"--adapter .*: .*adapts 'model\.layers\.0\.self_attn\.qkv_proj', which the base model does not have"),
    ("truncated adapter weights", with_adapter(truncate),
     r"--adapter .*: adapter_model\.safetensors is damaged \(.*incomplete metadata.*\); copy it again"),
    ("corrupted adapter header", with_adapter(garble_header),
     r"--adapter .*: adapter_model\.safetensors is damaged \(.*invalid JSON in header.*\)"),
    ("adapter with pickle weights only", with_adapter(pickle_only),
     r"--adapter .*: only adapter_model\.bin, a pickle file, .*model\.allow_pickle = true"),
    ("adapter config not JSON", with_adapter(lambda f, ctx: (f / "adapter_config.json").write_text("{r: 4")),
     r"--adapter .*: adapter_config\.json is not valid JSON"),
    # the workspace itself
    ("champion's stored files changed", tamper_champion,
     r"registry: the champion sft-[0-9a-f]{12} in .* does not match its fingerprint; restore that folder, or "
     r"`tunegate rollback`"),
    ("registry is not a database", rewrite(".tunegate/registry/registry.sqlite", b"not a database" * 100),
     r".*registry\.sqlite: not a SQLite database, or damaged"),
    ("cache is not a database", rewrite(".tunegate/cache.sqlite", b"\x00garbage" * 1000),
     r".*cache\.sqlite: not a SQLite database, or damaged"),
]


@pytest.fixture(scope="module")
def stocked(tmp_path_factory, tiny_model_dir, repo_root):
    """A project after one promoted run, plus what the cases need: the champion, another base's adapter."""
    from peft import LoraConfig, get_peft_model

    from tests.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("stocked") / "project"
    root.mkdir()
    make_project(SimpleNamespace(path=root), tiny_model_dir, repo_root, golden=golden_rows(ALWAYS),
                 extra_config=GOLDEN_ONLY)
    for name in ("safety", "mmlu"):
        (root / "data" / f"{name}.jsonl").write_text("")
    first = subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q"], cwd=root,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and "tunegate: PROMOTED" in first.stdout, first.stdout + first.stderr

    from transformers import AutoModelForCausalLM, LlamaConfig

    other_model = root.parent / "other-model"
    build_tiny_model(other_model, repo_root)
    config = LlamaConfig.from_pretrained(other_model)
    config.hidden_size, config.intermediate_size = 48, 96
    peft_model = get_peft_model(AutoModelForCausalLM.from_config(config),
                                LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    other_adapter = root.parent / "other-adapter"
    peft_model.save_pretrained(other_adapter)
    champion = next((root / ".tunegate" / "registry" / "artifacts").iterdir())
    return root, SimpleNamespace(model=tiny_model_dir, champion=champion, other_adapter=other_adapter)


def attempt(stocked, n: int, case: str, edit, expected: str) -> list[str]:
    """Run one bad input; return what went wrong (nothing, if it was handled as it must be)."""
    source, ctx = stocked
    project = source.parent / f"case-{n}"
    shutil.copytree(source, project, symlinks=True)
    args = edit(project, ctx)
    before = stored(project)
    run = subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", *args], cwd=project,
                         capture_output=True, text=True, timeout=600)
    problems = []
    if expected.startswith(BLOCKED):
        code, lines, prefix = pytest.ExitCode.TESTS_FAILED, run.stdout.splitlines()[-1:], "tunegate: "
    else:
        code, lines, prefix = pytest.ExitCode.USAGE_ERROR, run.stderr.splitlines(), "ERROR: "
    lines = [line for line in lines if line.strip()]
    if run.returncode != code:
        problems.append(f"exit {run.returncode}, not {code.value}")
    if len(lines) != 1 or not re.match(prefix + expected, lines[0]):
        problems.append(f"not the one expected line: {lines[:3]}")
    elif len(lines[0]) > 400:
        problems.append(f"the line is {len(lines[0])} characters long")
    if "Traceback" in run.stdout + run.stderr:
        problems.append("a traceback was printed")
    if changed := lost(before, project):
        problems.append(f"stored things lost or changed: {changed}")
    if code == pytest.ExitCode.USAGE_ERROR and (added := sorted(set(stored(project)) - set(before))):
        problems.append(f"a usage error wrote: {added}")
    if (project.parent / f"{project.name}-model" / "CODE_RAN").exists():
        problems.append("the model's own code ran")
    return [f"{case}: {p}" for p in problems]


def test_every_bad_input_is_one_clear_line_and_loses_nothing(stocked):
    assert len(CASES) >= 30 and len({c[0] for c in CASES}) == len(CASES)
    before = stored(stocked[0])
    assert any(k.startswith("cache.sqlite:") for k in before) and any("artifacts" in k for k in before)
    assert not corrupt(stocked[0])
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda numbered: attempt(stocked, numbered[0], *numbered[1]), enumerate(CASES)))
    problems = [p for case in found for p in case]
    print(f"\nbad inputs tried: {len(CASES)}; handled as one clear line with nothing lost: "
          f"{sum(not case for case in found)}")
    assert not problems, "\n".join(problems)
