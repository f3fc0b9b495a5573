"""The `tunegate data` commands: check, clean and split. `harness.cli` registers them.

`check` exits 0 when it finds no errors (warnings allowed) and 1 when it finds some; bad usage
(a missing file, an out-of-range option) is one line on stderr and exit 2, like every command.
"""
from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from harness.config import CONFIG_ENV, Config, config_path, load_config
from harness.curation.findings import KINDS
from harness.errors import TunegateError
from harness.run.inputs import RunInputs


def _config(args: argparse.Namespace) -> tuple[Config, Path | None]:
    """The config and its file; without --config, $TUNEGATE_CONFIG or ./tunegate.toml, the defaults
    (data commands also work on files outside a project)."""
    path = config_path(args.config, Path.cwd())
    if not args.config and not os.environ.get(CONFIG_ENV) and not path.is_file():
        return Config(root=Path.cwd()), None
    return load_config(path), path


def _print_report(report, limit: int) -> None:
    for f in report.files:
        role = "training" if f.role == "train" else "evaluation"
        print(f"tunegate: {f.name}: {role} data, {len(f.examples)} examples, sha256 {f.sha256[:16]}")
    shown: Counter = Counter()
    for finding in report.findings:
        shown[finding.kind] += 1
        if shown[finding.kind] <= limit:
            print(finding.line())
    for kind in KINDS:
        if shown[kind] > limit:
            print(f"tunegate: ... and {shown[kind] - limit} more [{kind}] findings (--limit)")
    for f in report.files:
        lengths = [n for n in report.tokens.get(f.name, []) if n is not None]
        if lengths and f.name in report.truncated:
            print(f"tunegate: {f.name}: {report.truncated[f.name]} of {len(lengths)} examples over training.max_length "
                  f"{report.settings.max_length} tokens (longest {max(lengths)})")
    if report.eval_sets:
        compared = ", ".join(f"{name} ({n})" for name, n in report.eval_sets.items())
        print(f"tunegate: leakage also checked against the suites' data: {compared}")
    n = sum(len(f.examples) for f in report.files)
    print(f"tunegate: data check: {len(report.errors)} errors, {len(report.warnings)} warnings in {n} examples "
          f"({len(report.files)} files), {report.seconds:.1f} s")


def cmd_check(args: argparse.Namespace) -> int:
    from harness.curation import checks
    from harness.engine.models import load_tokenizer_only

    config, path = _config(args)
    settings = checks.settings_from(config, args.max_length)
    tokenizer = load_tokenizer_only(config.model.base, config.path(config.workspace.dir), config.model.revision,
                                    config.model.trust_remote_code)
    if not args.paths:
        if path is None:
            raise TunegateError("no files given and no tunegate.toml here: name the files to check, or run "
                                "where the config is (or pass --config)")
        report = checks.check_run(RunInputs(path), tokenizer, settings)
    else:
        eval_sets = {}
        if path is not None and not args.no_suites:
            eval_sets = RunInputs(path).leakage_sets(skip=frozenset(Path(p).resolve() for p in args.paths))
        report = checks.check_paths([Path(p) for p in args.paths], settings, tokenizer, eval_sets)
    _print_report(report, args.limit)
    return 1 if report.errors else 0


def cmd_clean(args: argparse.Namespace) -> int:
    from harness.curation.clean import clean_file

    config, _ = _config(args)
    got = clean_file(Path(args.path), Path(args.out), config.data.near_duplicate_threshold)
    placeholders = ", ".join(f"{n} {kind}" for kind, n in sorted(got.pii.items())) or "none"
    print(f"tunegate: {args.out}: kept {got.kept} of {got.read} examples; dropped {got.exact} duplicates and "
          f"{got.near} near-duplicates; PII replaced: {placeholders}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from harness.curation.split import split_file

    config, _ = _config(args)
    src = Path(args.path)
    got = split_file(src, Path(args.out_dir) if args.out_dir else src.parent, args.holdout, args.seed,
                     args.stratify, config.data.leakage_threshold)
    print(f"tunegate: {got.train}: {got.n_train} examples; {got.holdout}: {got.n_holdout} held out")
    if args.stratify:
        for value, (n_train, n_held) in got.strata.items():
            print(f"  {args.stratify}={value}: {n_train} train, {n_held} holdout")
    return 0


def register(sub) -> None:
    """Add `tunegate data check|clean|split` to the command's subparsers."""
    data = sub.add_parser("data", help="check, clean and split data files before training")
    data_sub = data.add_subparsers(dest="data_command", required=True)

    p = data_sub.add_parser("check", help="schema, consistency, token lengths, duplicates, PII and leakage")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="JSONL files (default: the config's train, val and golden files)")
    p.add_argument("--max-length", type=int, default=None, help="token limit (default: training.max_length)")
    p.add_argument("--no-suites", action="store_true", help="do not compare with the evaluation suites' data")
    p.add_argument("--limit", type=int, default=20, help="findings printed per kind (default 20); all are counted")
    p.set_defaults(func=cmd_check)

    p = data_sub.add_parser("clean", help="write a copy without duplicates and with PII replaced by placeholders")
    p.add_argument("path", help="the JSONL file to clean (never changed)")
    p.add_argument("--out", required=True, metavar="PATH", help="where to write the cleaned copy")
    p.set_defaults(func=cmd_clean)

    p = data_sub.add_parser("split", help="deterministic train / holdout split, optionally stratified")
    p.add_argument("path", help="the JSONL file to split (never changed)")
    p.add_argument("--out-dir", metavar="DIR", help="where to write <name>.train.jsonl and <name>.holdout.jsonl "
                   "(default: beside the input)")
    p.add_argument("--holdout", type=float, default=0.1, help="share held out, 0.1 to 0.2 (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split")
    p.add_argument("--stratify", metavar="FIELD", help="keep the share of each value of this field, e.g. meta.task")
    p.set_defaults(func=cmd_split)
