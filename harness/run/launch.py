"""`accelerate launch -m harness.run.launch --config tunegate.toml`: train (or reuse) the run's adapter
in every launched process, exactly as `pytest suites/` would, then evaluate it with --adapter.
How the processes share the work is in training/launch.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.config import config_path
from harness.errors import TunegateError
from harness.redaction import redact
from harness.run.candidate import accelerator_state
from harness.run.run import Run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.run.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="config file (default: $TUNEGATE_CONFIG or ./tunegate.toml)")
    parser.add_argument("--retrain", action="store_true", help="train even if this launch's adapter is stored")
    args = parser.parse_args(argv)
    state = accelerator_state()
    try:
        adapter = Run(config_path(args.config, Path.cwd()), retrain=args.retrain).adapter()
    except TunegateError as e:
        if state.is_main_process:
            print(f"tunegate: error: {redact(str(e))}", file=sys.stderr)
        return 2
    if state.is_main_process:
        done = "trained" if adapter.trained_now else "reused"
        print(f"tunegate: {done} {adapter.id} with {state.num_processes} processes in {adapter.path}; "
              f"evaluate it with: pytest suites/ --adapter {adapter.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
