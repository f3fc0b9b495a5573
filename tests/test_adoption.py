"""Adoption from another repository, as a new user does it: build the wheel, install it into a fresh
virtualenv in an empty folder, `tunegate init`, point model.base at a model, and `pytest suites/` runs to a
verdict on the data and suite files init wrote and the evaluation data shipped in the wheel.

The new virtualenv sees this one's dependencies (torch, transformers...) through a .pth file naming their
folder: a plain path line adds the folder without running the editable-install hooks kept in it, so
`harness` is imported from the installed wheel, never from this repository."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

TINY_OVERRIDES = """
[model]
base = "{model}"
dtype = "float32"
[training]
epochs = 1
batch_size = 4
eval_steps = 2
max_length = 160
bf16 = false
[training.lora]
r = 4
alpha = 8
target_modules = ["q_proj", "v_proj"]
[engine]
batch_size = 8
[suites.golden]
max_new_tokens = 6
[suites.safety]
per_group = 2
max_new_tokens = 8
[suites.mmlu]
per_subject = 2
[suites.diversity]
samples = 2
max_new_tokens = 4
[suites.bias]
bbq_per_category = 4
max_new_tokens = 6
[suites.memorisation]
probes = 3
max_new_tokens = 6
"""


def sh(args, cwd: Path, env: dict, timeout: int = 600) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{out}"
    return out


def build_wheel(repo_root: Path, work: Path, env: dict) -> Path:
    """Build from a copy of the sources: an in-tree build would write build/ and egg-info into the repo."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo_root / name, src / name)
    for package in ("harness", "training"):
        shutil.copytree(repo_root / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", work / "dist", src], work, env)
    (wheel,) = (work / "dist").glob("tunegate-*.whl")
    return wheel


def fresh_venv(work: Path, wheel: Path, env: dict) -> Path:
    venv = work / "venv"
    sh([sys.executable, "-m", "venv", "--without-pip", venv], work, env)
    python = venv / "bin" / "python"
    site = sh([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], work, env).strip()
    (Path(site) / "tunegate-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    sh([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], work, env)
    return venv


def repo_traces(repo_root: Path) -> dict:
    """What a build in the repository itself would create or rewrite."""
    return {name: (repo_root / name).exists() and (repo_root / name).stat().st_mtime_ns
            for name in ("build", "dist", "tunegate.egg-info", "tunegate.egg-info/SOURCES.txt")}


def test_a_new_repository_installs_the_wheel_inits_and_runs_to_a_verdict(tmp_path, tiny_model_dir, repo_root):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUNEGATE_CONFIG", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    repo_state = repo_traces(repo_root)
    wheel = build_wheel(repo_root, tmp_path, env)
    venv = fresh_venv(tmp_path, wheel, env)
    python = venv / "bin" / "python"
    project = tmp_path / "my_task"
    project.mkdir()

    imported = sh([python, "-c", "import harness, harness.defaults as d; print(harness.__file__); print(d.folder())"],
                  project, env).split()
    assert all(Path(p).is_relative_to(venv) for p in imported), imported  # the wheel's copy, not the repo's

    out = sh([venv / "bin" / "tunegate", "init"], project, env)
    assert "tunegate: wrote tunegate.toml" in out
    assert (project / "suites" / "test_golden.py").is_file() and (project / "data" / "golden.jsonl").is_file()
    # The user's edit: a tiny model instead of the bundled one, and settings that keep the run short.
    (project / "tunegate.toml").rename(project / "init.toml")
    (project / "tunegate.toml").write_text('extends = "init.toml"\n' + TINY_OVERRIDES.format(model=tiny_model_dir))

    run = subprocess.run([python, "-m", "pytest", "suites/", "-p", "no:cacheprovider"], cwd=project, env=env,
                         capture_output=True, text=True, timeout=900)
    out = run.stdout + run.stderr
    verdict = re.search(r"^tunegate: (PROMOTED|BLOCKED)\b.*$", out, re.M)
    assert verdict and "Traceback" not in out and "INTERNALERROR" not in out, out
    assert run.returncode == (0 if verdict[1] == "PROMOTED" else 1), out
    assert re.search(r"^collected \d+ items", out, re.M) and "suites/test_safety.py" in out, out
    results = json.loads((project / "reports" / "latest" / "results.json").read_text())
    assert results["complete"] and results["verdict"]["status"] == verdict[1]
    # Every default suite ran on the data shipped in the wheel and gated the candidate.
    assert {g["name"].split(".")[0] for g in results["gates"]} == {"golden", "safety", "mmlu", "diversity", "bias",
                                                                   "memorisation"}
    assert repo_traces(repo_root) == repo_state  # no build/, no egg-info rewritten in the repository
