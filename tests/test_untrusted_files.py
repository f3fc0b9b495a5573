"""Files a run reads are data: a pickle checkpoint loads only when the config allows it, and text that
looks like code or a template (in the config, in the data) stays text all the way into the report."""
from __future__ import annotations

import json
import shutil

from tests.test_e2e_suites import ALWAYS, latest_results, make_project, run, write_jsonl

pytest_plugins = ["pytester"]


def test_a_pickle_model_runs_only_when_the_config_allows_it(pytester, tiny_model_dir, repo_root):
    import torch
    from safetensors.torch import load_file

    model = pytester.path / "pickle-model"
    shutil.copytree(tiny_model_dir, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    root = make_project(pytester, tiny_model_dir, repo_root)
    toml = root / "tunegate.toml"
    toml.write_text(toml.read_text().replace(f'base = "{tiny_model_dir}"', f'base = "{model}"'))
    refused, out = run(pytester)
    assert refused.ret == 4 and "only pickle weights (.bin)" in out, out

    toml.write_text(toml.read_text().replace("[model]\n", "[model]\nallow_pickle = true\n"))
    allowed, out = run(pytester)
    assert allowed.ret == 0, out
    results = latest_results(root)
    assert results["verdict"]["status"] == "PROMOTED" and results["base_model"]["allow_pickle"] is True
    assert results["engine"]["generated"] > 0  # the pickle weights were loaded and ran


def test_text_that_looks_like_code_or_a_template_stays_text(pytester, tiny_model_dir, repo_root):
    marker = pytester.path / "CODE_RAN"
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    template = "{{ 7*7 }} {% for x in range(3) %}{{ x }}{% endfor %} ${7*7} `id`"
    golden = [{"id": "g-0", "messages": [{"role": "user", "content": f"{template} {code}"}], "rubric": ALWAYS}]
    root = make_project(pytester, tiny_model_dir, repo_root, golden=golden)
    toml = root / "tunegate.toml"
    toml.write_text(toml.read_text().replace("[data]\n", f"[data]\nsystem_prompt = {json.dumps(code)}\n")
                    .replace("max_length = 64", "max_length = 256"))  # room for the long system prompt
    write_jsonl(root / "data" / "golden.jsonl", golden)
    result, out = run(pytester)
    assert result.ret == 0, out
    assert not marker.exists()
    prompt = next(r["prompt"] for r in latest_results(root)["examples"] if r["example_id"] == "g-0")
    assert prompt == [{"role": "system", "content": code}, {"role": "user", "content": f"{template} {code}"}]
    page = (root / "reports" / "latest" / "index.html").read_text()
    assert template in page  # shown as written, not rendered
