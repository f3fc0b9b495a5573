"""End-to-end over HTTP: every suite run by `pytest suites/` with the OpenAI-compatible backend against a
`tunegate serve` child process on loopback gives the local engine's outputs and verdict; a server without
log-probabilities skips the suites scored by them, with the reason, and cannot promote."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.test_e2e_suites import all_suites_project, latest_results, run

pytest_plugins = ["pytester"]


def start_server(root):
    """`tunegate serve` on the project's base model (the same batch size and dtype as a local run)."""
    tunegate = shutil.which("tunegate", path=os.path.dirname(sys.executable))
    proc = subprocess.Popen([tunegate, "serve", "--port", "0"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    match = re.match(r"tunegate serve: (http://127\.0\.0\.1:\d+/v1) serving base", line)
    if not match:
        proc.kill()
        pytest.fail(f"tunegate serve did not start: {line!r}")
    return proc, match.group(1)


def use_server(root, url: str, workspace: str, **settings) -> None:
    """Point the project's config at the server, with a fresh workspace (no cache, no champion) and
    reports folder, as the local run started."""
    config = (root / "tunegate.toml").read_text()
    extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
    config = config.replace("[engine]\nbatch_size = 4\n", f'[engine]\nbatch_size = 4\nbackend = "openai"\n'
                            f'[engine.openai]\nbase_url = "{url}"\nmodel = "base"\nload_adapters = true\n'
                            f'prompts_per_request = 1024\n{extra}')
    config += f'[workspace]\ndir = "{workspace}"\nreports = "reports-{workspace.strip(".")}"\n'
    (root / "tunegate.toml").write_text(config)


def outputs(results: dict) -> dict:
    return {(r["suite"], r["example_id"], r["role"]): r["output"] for r in results["examples"]}


@pytest.mark.slow
def test_every_suite_over_http_matches_the_local_engine(pytester, tiny_model_dir, repo_root):
    root = all_suites_project(pytester, tiny_model_dir, repo_root)
    result, out = run(pytester)
    assert result.ret == 0, out
    local = latest_results(root)
    local_config = (root / "tunegate.toml").read_text()

    proc, url = start_server(root)
    try:
        use_server(root, url, ".remote")
        result, out = run(pytester)
        assert result.ret == 0, out
        remote = json.loads((root / "reports-remote" / "latest" / "results.json").read_text())
        assert remote["verdict"]["status"] == local["verdict"]["status"] == "PROMOTED"
        assert remote["candidate"]["fingerprint"] == local["candidate"]["fingerprint"]
        assert remote["engine"]["requests"] > 0
        # Greedy and seeded-sample outputs of every suite, every role, every item: identical.
        mine, theirs = outputs(local), outputs(remote)
        assert mine.keys() == theirs.keys()
        assert {k[0] for k in mine} >= {"golden", "safety", "behaviour", "memorisation", "diversity"}
        assert {k: v for k, v in theirs.items() if mine[k] != v} == {}
        # Every suite's metrics, those scored by log-likelihood included (the server scores each prompt
        # plainly, the local engine packs a question's choices in one row: they agree to float rounding,
        # which changed no prediction here), and every gate.
        for suite in local["suites"]:
            assert remote["suites"][suite] == local["suites"][suite], suite
        assert [(g["name"], g["passed"]) for g in remote["gates"]] == [(g["name"], g["passed"]) for g in local["gates"]]

        # A server without log-probabilities: the suites scored by them skip, saying why, and the run
        # cannot promote until they are disabled.
        (root / "tunegate.toml").write_text(local_config)
        use_server(root, url, ".nologprobs", logprobs="false")
        result, out = run(pytester, "-rs")
        assert result.ret == 0, out
        assert "suite 'mmlu' is scored by log-likelihood, and engine.openai (api = 'completions', logprobs = false) " \
               "gives no log-probabilities" in out
        assert re.search(r"tunegate: NOT PROMOTED: gates not run: bias\.bbq_vs_base, .*mmlu\.noninferior_base", out)
    finally:
        proc.kill()
        proc.wait()
