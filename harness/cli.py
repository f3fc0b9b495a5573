"""The `tunegate` command: registry inspection (and, later, history and data tools).

User errors exit with status 2 and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.config import config_path, load_config
from harness.errors import TunegateError
from harness.registry import Registry


def _registry(args: argparse.Namespace) -> Registry:
    config = load_config(config_path(args.config, Path.cwd()))
    return Registry(config.path(config.workspace.dir) / "registry")


def cmd_registry_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    champion = registry.champion()
    versions = registry.versions()
    if not versions:
        print("no promoted adapters yet")
        return 0
    header = f"{'':2}{'adapter':20} {'promoted at':26} {'run':22} {'golden pass':>11}"
    print(header)
    for v in versions:
        mark = "* " if champion and v.adapter_id == champion.adapter_id else "  "
        rate = v.metrics.get("golden", {}).get("candidate", {}).get("pass_rate")
        rate_s = f"{rate:.3f}" if isinstance(rate, (int, float)) else "-"
        print(f"{mark}{v.adapter_id:20} {v.created_at:26} {v.run_id:22} {rate_s:>11}")
    print("* = champion")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunegate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help="config file (default: $TUNEGATE_CONFIG or ./tunegate.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    registry = sub.add_parser("registry", help="the adapter registry")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    registry_sub.add_parser("list", help="list promoted versions; * marks the champion").set_defaults(
        func=cmd_registry_list
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TunegateError as e:
        print(f"tunegate: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
