"""End to end: `pytest suites/` on the default config, timed as a user meets it, in a fresh
workspace (a temporary folder inside .tunegate/, since a run reads data and writes reports only inside
its project; the repository's own workspace and reports are not touched):

1. first:     nothing stored (the bundled model is converted, the adapter trained, every suite
              computed for base and candidate);
2. rerun:     nothing changed;
3. threshold: only a gate threshold changed (golden min_pass_rate);
4. rubric:    only a golden rubric changed (one check dropped from one item);
5. data:      one training example removed: retraining, then the candidate's work only, with the
              base's (and the now-champion's) results taken from the cache.

Each line gives the wall time, the peak RSS of the pytest process, the verdict, and what the
engine computed per role (items not found in the cache) and how many it found there. Run it alone
(2 cores); one repeat takes about half an hour:

    .venv/bin/python benchmarks/end_to_end.py [--repeats 3] [--skip-data] [--keep DIR]

`--config` runs every scenario on another config (each scenario's config extends it; the temporary
folder is then in the .tunegate/ beside it), and `--stop-after` ends each repeat after the named
scenario: tests/test_benchmarks.py runs the first scenario on a tiny random model that way.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("first", "rerun", "threshold", "rubric", "data")
# Runs a command and writes the peak RSS of its process tree's largest member (KiB on Linux).
PEAK_RSS = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
            "sys.exit(code)")


def write_config(work: Path, extends: Path, name: str, extra: str = "") -> Path:
    path = work / f"{name}.toml"
    path.write_text(f'extends = "{extends}"\n{extra}\n'
                    f'[workspace]\ndir = "{work / "ws"}"\nreports = "{work / "reports"}"\n')
    return path


def run(work: Path, scenario: str, config: Path) -> dict:
    rss_file = work / "rss"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, str(rss_file), sys.executable, "-m", "pytest",
                           "suites/", "-q", "-p", "no:cacheprovider", "--tunegate-config", str(config)],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    results_file = work / "reports" / "latest" / "results.json"
    if not results_file.is_file():
        sys.exit(f"{scenario}: the run wrote no results:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    results = json.loads(results_file.read_text())
    engine = results["engine"]
    return {"scenario": scenario, "seconds": round(seconds, 1), "peak_rss_mb": round(int(rss_file.read_text()) / 1024),
            "verdict": results["verdict"]["line"].removeprefix("tunegate: "),
            "trained_s": results["training"]["train_seconds"] if results["candidate"]["trained_now"] else None,
            "computed": engine.get("computed_by_role", {}),
            "cache_hits": engine.get("cache_hits", 0), "generated_tokens": engine.get("generated_tokens", 0)}


def one_repeat(config: Path, scenarios: tuple[str, ...], keep: Path | None) -> list[dict]:
    """Each of `scenarios`, in order, in a fresh workspace, on configs that extend `config`."""
    cfg = load_config(config)
    # A temporary folder in the project's .tunegate/, or with --keep a new one that outlives the run, for its reports.
    (cfg.root / ".tunegate").mkdir(exist_ok=True)
    folder = (contextlib.nullcontext(keep) if keep
              else tempfile.TemporaryDirectory(prefix="e2e-", dir=cfg.root / ".tunegate"))
    rows = []
    with folder as tmp:
        work = Path(tmp)
        work.mkdir(parents=True, exist_ok=keep is None)
        base = write_config(work, config, "base")
        for scenario in scenarios:
            rows.append(run(work, scenario, scenario_config(work, config, cfg, scenario, base)))
    return rows


def scenario_config(work: Path, config: Path, cfg, scenario: str, base: Path) -> Path:
    """The config `scenario` runs with: `base`, or one that extends `config` with the scenario's change."""
    if scenario in ("first", "rerun"):
        return base
    if scenario == "threshold":
        bar = round(cfg.suites.golden.gates.min_pass_rate + 0.01, 4)
        return write_config(work, config, "threshold", f"[suites.golden.gates]\nmin_pass_rate = {bar}")
    if scenario == "rubric":
        golden_file = cfg.path(cfg.suites.golden.path)
        golden = work / "golden"
        golden.mkdir()
        for schema in golden_file.parent.glob("*.json"):  # the rubrics' JSON schemas, named relative to the file
            shutil.copy(schema, golden)
        items = [json.loads(line) for line in golden_file.read_text().splitlines() if line.strip()]
        items[0]["rubric"] = items[0]["rubric"][:-1]
        (golden / "golden.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
        return write_config(work, config, "rubric", f'[suites.golden]\npath = "{golden / "golden.jsonl"}"')
    lines = cfg.path(cfg.data.train).read_text().splitlines()[:-1]
    (work / "train.jsonl").write_text("\n".join(lines) + "\n")
    return write_config(work, config, "data", f'[data]\ntrain = "{work / "train.jsonl"}"')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-data", action="store_true", help="leave out the retraining scenario")
    ap.add_argument("--keep", type=Path,
                    help="work in this new folder, inside the project, and keep it (repeat i in DIR/i)")
    ap.add_argument("--config", type=Path, default=ROOT / "tunegate.toml",
                    help="the config every scenario's config extends (default: the project's tunegate.toml)")
    ap.add_argument("--stop-after", choices=SCENARIOS, default=SCENARIOS[-1],
                    help="the last scenario of each repeat (each one runs after those before it)")
    args = ap.parse_args()
    scenarios = SCENARIOS[: SCENARIOS.index(args.stop_after) + 1]
    if args.skip_data:
        scenarios = tuple(s for s in scenarios if s != "data")
    rows = []
    for i in range(args.repeats):
        for row in one_repeat(args.config.resolve(), scenarios, args.keep / str(i) if args.keep else None):
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{'scenario':<10} {'runs':>4} {'min s':>7} {'median s':>9} {'peak RSS MB':>12}  computed per role (last run)")
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        mine = [r for r in rows if r["scenario"] == scenario]
        secs = [r["seconds"] for r in mine]
        print(f"{scenario:<10} {len(mine):>4} {min(secs):>7.1f} {statistics.median(secs):>9.1f} "
              f"{max(r['peak_rss_mb'] for r in mine):>12}  {mine[-1]['computed'] or 'nothing'}")


if __name__ == "__main__":
    main()
