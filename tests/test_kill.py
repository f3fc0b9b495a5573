"""Kill tests: SIGKILL a real `pytest suites/` run at random moments during training, generation, cache
writes, promotion and report writing, then check that nothing stored was lost or left corrupt and that
the next run completes with the same results as an uninterrupted one.

Each trial starts from the same workspace: a first run promoted adapter A (registry, cache, history,
reports), then one training example changed, so the killed run trains adapter B, generates for it,
writes the cache, promotes B and writes its report. tests/killer.py arms the kill inside the child.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.killer import PHASES
from tests.test_e2e_suites import all_suites_project
from tests.workspace_state import corrupt, lost, stored

pytest_plugins = ["pytester"]

TRIALS_PER_PHASE = 4  # 5 phases: 20 kills
SEED = 20261123


def child(project: Path, log: Path, **kill: str) -> subprocess.CompletedProcess:
    """One `pytest suites/` run of the project, with the killer plugin loaded."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "TUNEGATE_KILL_LOG": str(log),
           "OMP_NUM_THREADS": "1", **kill}  # two trials run side by side on two cores
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-p", "tests.killer",
                           "-q", f"--basetemp={project / '.pytest-tmp'}"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)


def copy_project(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(".pytest-tmp", "__pycache__"))
    return dst


def call_durations(log: Path) -> dict[str, list[float]]:
    """Seconds spent in each call of each phase, in order, from a measuring run's log."""
    entered, durations = {}, {}
    for line in log.read_text().splitlines():
        event, phase, t = line.split()
        if event == "enter":
            entered[phase] = float(t)
        else:
            durations.setdefault(phase, []).append(float(t) - entered.pop(phase))
    return durations


def random_moment(rng: random.Random, durations: list[float]) -> tuple[int, float]:
    """A moment drawn uniformly from the time spent inside a phase: (which call, seconds into it)."""
    at = rng.uniform(0, sum(durations))
    for call, d in enumerate(durations):
        if at <= d:
            return call, at
        at -= d
    return len(durations) - 1, durations[-1]


def landed_inside(log: Path, phase: str) -> bool:
    """Whether the process died inside a call of `phase` (its last event for the phase is an entry)."""
    events = [line.split()[0] for line in log.read_text().splitlines() if line.split()[1] == phase]
    return bool(events) and events[-1] == "enter"


def comparable(results: dict) -> dict:
    """What must not depend on an earlier kill: the verdict and every base and candidate metric."""
    return {"verdict": results["verdict"]["status"],
            "suites": {s: {r: m for r, m in roles.items() if r in ("base", "candidate")}
                       for s, roles in results["suites"].items()}}


def latest(project: Path) -> dict:
    return json.loads((project / "reports" / "latest" / "results.json").read_text())


def test_sigkill_at_random_moments_loses_nothing_and_the_next_run_completes(pytester, tiny_model_dir, repo_root,
                                                                            tmp_path):
    seed = all_suites_project(pytester, tiny_model_dir, repo_root)
    first = child(seed, tmp_path / "first.log")
    assert first.returncode == 0 and "tunegate: PROMOTED" in first.stdout, first.stdout + first.stderr
    train = seed / "data" / "train.jsonl"
    train.write_text(train.read_text().replace("closed by agent 0", "closed by agent 99"))  # a new adapter B

    reference_dir = copy_project(seed, tmp_path / "reference")
    reference = child(reference_dir, tmp_path / "reference.log")
    assert reference.returncode == 0 and "tunegate: PROMOTED" in reference.stdout, reference.stdout
    expected = comparable(latest(reference_dir))
    durations = call_durations(tmp_path / "reference.log")
    assert set(durations) == set(PHASES)
    before = stored(seed)

    rng = random.Random(SEED)
    trials = [(n, phase, *random_moment(rng, durations[phase])) for n, phase in enumerate(
        [p for p in PHASES for _ in range(TRIALS_PER_PHASE)])]

    def trial(n: int, phase: str, call: int, after: float) -> dict:
        project = copy_project(seed, tmp_path / f"trial-{n}")
        log = tmp_path / f"trial-{n}.log"
        killed = child(project, log, TUNEGATE_KILL_IN=phase, TUNEGATE_KILL_CALL=str(call),
                       TUNEGATE_KILL_AFTER=f"{after:.6f}")
        outcome = {"phase": phase, "call": call, "after": after, "killed": killed.returncode == -9,
                   "inside": landed_inside(log, phase), "corrupt": corrupt(project), "lost": lost(before, project)}
        again = child(project, tmp_path / f"trial-{n}-again.log")
        outcome["next_run_ok"] = again.returncode == 0 and comparable(latest(project)) == expected
        outcome["corrupt"] += corrupt(project)
        outcome["lost"] += lost(before, project)
        outcome["output"] = again.stdout[-2000:] + again.stderr[-2000:]
        return outcome

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda t: trial(*t), trials))

    print(f"\nkill trials: {len(outcomes)}; killed {sum(o['killed'] for o in outcomes)}; inside the phase "
          f"{sum(o['inside'] for o in outcomes)}; corrupt {sum(len(o['corrupt']) for o in outcomes)}; "
          f"lost {sum(len(o['lost']) for o in outcomes)}; next run ok {sum(o['next_run_ok'] for o in outcomes)}")
    for phase in PHASES:
        mine = [o for o in outcomes if o["phase"] == phase]
        print(f"  {phase}: {len(mine)} kills, {sum(o['inside'] for o in mine)} inside; {len(durations[phase])} calls, "
              f"{sum(durations[phase]):.3f} s in all")
    assert len(outcomes) >= 20
    for o in outcomes:
        assert o["killed"], o
        assert not o["corrupt"], o
        assert not o["lost"], o
        assert o["next_run_ok"], o
    # The kills must mostly land where they were aimed, or the test would not be testing those phases.
    for phase in PHASES:
        assert sum(o["inside"] for o in outcomes if o["phase"] == phase) >= TRIALS_PER_PHASE // 2, phase
