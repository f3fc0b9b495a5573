"""The `tunegate` command: a new project (init), data curation, run history, comparisons, reports, the
registry (promote, rollback), the human review loop and the export of merged weights for serving.

User errors exit with status 2 and one line on stderr, never a traceback, and change nothing stored.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from harness.cli import data as data_commands
from harness.cli import init as init_command
from harness.config import Config, config_path, load_config
from harness.errors import TunegateError
from harness.redaction import redact
from harness.report import compare as compare_runs
from harness.roles import CANDIDATE, ROLES
from harness.store.backends import open_history, open_registry
from harness.store.registry import Registry


def _config(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config, Path.cwd()))


def _registry(args: argparse.Namespace):
    config = _config(args)
    return open_registry(config, config.path(config.workspace.dir))


def _history(args: argparse.Namespace):
    config = _config(args)
    return open_history(config, config.path(config.workspace.dir))


def clip(text: str, n: int) -> str:
    """One printable line of at most `n` characters: model output may hold newlines or terminal escapes."""
    line = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return line if len(line) <= n else line[: n - 1] + "\u2026"


def _reason(text: str) -> str:
    if not text.strip():
        raise TunegateError("--reason is empty; say why, it is kept in the registry's log")
    return text.strip()


def cmd_registry_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    champion = registry.champion()
    versions = registry.versions()
    print(f"task {registry.task}")
    if not versions:
        print("no promoted adapters yet")
        return 0
    header = f"{'':2}{'adapter':20} {'promoted at':26} {'run':22} {'golden pass':>11}"
    print(header)
    for v in versions:
        mark = "* " if champion and v.adapter_id == champion.adapter_id else "  "
        rate = v.metrics.get("golden", {}).get(CANDIDATE, {}).get("pass_rate")
        rate_s = f"{rate:.3f}" if isinstance(rate, (int, float)) else "-"
        print(f"{mark}{v.adapter_id:20} {v.created_at:26} {v.run_id:22} {rate_s:>11}")
    print("* = champion")
    return 0


def cmd_registry_log(args: argparse.Namespace) -> int:
    registry = _registry(args)
    events = registry.events()
    print(f"task {registry.task}")
    if not events:
        print("no registry events yet")
    for e in events:
        print(f"{e['at']:26} {e['action']:15} {e['adapter_id']:20} {e['run_id'] or '-':22} {clip(e['reason'], 80)}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    history = _history(args)
    runs = history.runs(limit=args.limit)
    print(f"task {history.task}")
    if not runs:
        print("no runs recorded yet")
        return 0
    print(f"{'run':22} {'started':26} {'commit':8} {'verdict':12} {'candidate':18} {'champion':18} "
          f"{'gates ok/failed/n-a':>19} {'golden pass':>11}")
    for r in runs:
        states = [g["passed"] for g in r.gates]
        counts = f"{states.count(True)}/{states.count(False)}/{states.count(None)}"
        rate = r.metrics.get("golden", {}).get(CANDIDATE, {}).get("pass_rate")
        rate_s = f"{rate:.3f}" if isinstance(rate, (int, float)) else "-"
        print(f"{r.run_id:22} {r.started_at:26} {(r.git_commit or '-')[:8]:8} {r.status:12} "
              f"{r.candidate_id or '-':18} {r.champion_id or '-':18} {counts:>19} {rate_s:>11}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    history = _history(args)
    a, b = history.run(args.run_a), history.run(args.run_b)
    diff = compare_runs.compare(a.results(), b.results(), role=args.role)
    print(f"{args.role} outputs, {a.run_id} -> {b.run_id}: {len(diff.broken)} now fail, {len(diff.fixed)} now pass, "
          f"{len(diff.changed)} changed output with the same verdict, {diff.unchanged} unchanged, "
          f"{len(diff.only_a)} only in {a.run_id}, {len(diff.only_b)} only in {b.run_id}")
    for name, va, vb in diff.gates:
        fa, fb = ("-" if v is None else f"{v:.3f}" for v in (va, vb))
        print(f"  gate {name:40} {fa:>7} -> {fb:>7}")
    for title, items in (("now fail", diff.broken), ("now pass", diff.fixed), ("changed output", diff.changed)):
        if not items:
            continue
        print(f"{title}:")
        for ra, rb in items[: args.limit]:
            print(f"  {ra['suite']:12} {clip(ra['example_id'], 28):28} {clip(ra['output'], 40):40} | "
                  f"{clip(rb['output'], 40)}")
        if len(items) > args.limit:
            print(f"  ... {len(items) - args.limit} more (--limit)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_reports

    history = _history(args)
    run = history.run(args.run_id) if args.run_id else history.latest()
    written = write_reports(run.results(), run.results_path.parent, history)
    print(f"tunegate: report in {written.html}")
    print(f"tunegate: summary in {written.summary}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    reason = _reason(args.reason)
    run = _history(args).run(args.run_id)
    results = run.results()
    cand = results.get("candidate")
    if not cand:
        raise TunegateError(f"run {run.run_id} evaluated no candidate adapter; nothing to promote")
    registry = _registry(args)
    champion = registry.champion()
    if champion and champion.adapter_id == cand["id"]:
        raise TunegateError(f"{cand['id']} (run {run.run_id}) is already the champion")
    source = Path(cand["path"])
    if registry.version(cand["id"]) is None and not source.is_dir():
        raise TunegateError(f"run {run.run_id}: its adapter folder {source} is gone; it cannot be promoted")
    registry.promote(
        adapter_id=cand["id"], fingerprint=cand["fingerprint"], source=source, run_id=run.run_id,
        base_fingerprint=results["base_model"]["fingerprint"], config_hash=results["config_hash"],
        data=results["data"], metrics=results["suites"], gates=results["gates"], reason=reason,
        action="manual-promote",
    )
    was = f" (its verdict was {run.status})" if run.status != "PROMOTED" else ""
    print(f"tunegate: {cand['id']} from run {run.run_id} is the champion of task {registry.task}{was}; "
          f"replaces {champion.adapter_id if champion else 'nothing'}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    registry = _registry(args)
    old, new = registry.rollback(_reason(args.reason))
    print(f"tunegate: rolled back task {registry.task}: {new.adapter_id} (run {new.run_id}) is the champion again; "
          f"replaces {old.adapter_id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.engine.adapter_check import check_adapter
    from harness.engine.export import export_merged, find_artifact
    from harness.engine.models import linear_shapes, resolve_base

    config = _config(args)
    m, workspace = config.model, config.path(config.workspace.dir)
    shared = config.registry.backend != "sqlite"
    registry = open_registry(config, workspace) if shared or Registry.exists_in(workspace) else None
    artifact = find_artifact(args.adapter, workspace, registry)
    base = resolve_base(m.base, workspace, m.revision, m.allow_pickle)
    check_adapter(artifact.path, linear_shapes(base, m.trust_remote_code), m.allow_pickle)
    out = export_merged(artifact, base, Path(args.out), args.dtype, args.force, m.trust_remote_code)
    print(f"tunegate: {artifact.id} merged into {base.source} and saved in {out} ({args.dtype}); "
          "transformers and vLLM load it as a plain model")
    return 0


def cmd_review_export(args: argparse.Namespace) -> int:
    from harness.report import review

    config = _config(args)
    history = open_history(config, config.path(config.workspace.dir))
    run = history.run(args.run_id) if args.run_id else history.latest()
    results = run.results()
    picked = review.sample(results, args.n, role=args.role, suites=args.suite, seed=args.seed)
    review.write_rows(Path(args.out), review.export_rows(results, picked, review.rubric_lookup(config)))
    print(f"tunegate: {len(picked)} {args.role} outputs of run {run.run_id} to grade in {args.out} "
          "(fill 'grade' with pass or fail, then `tunegate review import`)")
    return 0


def cmd_review_import(args: argparse.Namespace) -> int:
    from harness.report import review, write_reports

    history = _history(args)
    got = review.parse_grades(Path(args.path), history, args.grader or getpass.getuser())
    history.add_grades(got.grades, source=str(Path(args.path).resolve()))
    print(f"tunegate: imported {len(got.grades)} grades ({got.skipped} rows left ungraded)")
    for run_id in sorted({g.run_id for g in got.grades}):
        run = history.run(run_id)
        results = run.results()
        for a in review.agreement(results, history.grades(run_id)):
            kappa = "undefined" if a.kappa is None else f"{a.kappa:.3f}"
            print(f"  run {run_id} {a.suite:12} n={a.n:<4} agreement {a.percent:5.1f}%  Cohen's kappa {kappa}")
        write_reports(results, run.results_path.parent, history)  # the report shows the new agreement
    return 0


CONFIG_HELP = "config file (default: $TUNEGATE_CONFIG or ./tunegate.toml)"


def _config_option_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept --config after the subcommand too (`tunegate data check --config X`). The default is
    suppressed so that a subcommand without it keeps the value given before it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _config_option_everywhere(child)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunegate", description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="PATH", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    init_command.register(sub)
    data_commands.register(sub)

    registry = sub.add_parser("registry", help="the adapter registry")
    registry_sub = registry.add_subparsers(dest="registry_command", required=True)
    registry_sub.add_parser("list", help="list promoted versions; * marks the champion").set_defaults(
        func=cmd_registry_list)
    registry_sub.add_parser("log", help="every promotion and rollback, with its time and reason").set_defaults(
        func=cmd_registry_log)

    p = sub.add_parser("history", help="every recorded run, promoted or not, oldest first")
    p.add_argument("--limit", type=int, default=None, help="only the newest N runs")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("compare", help="per-example differences between two runs")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--role", default=CANDIDATE, choices=ROLES)
    p.add_argument("--limit", type=int, default=20, help="examples listed per kind of change (default 20)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="re-render a run's HTML report and summary from results.json and history")
    p.add_argument("run_id", nargs="?", help="default: the latest run")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("promote", help="make a run's candidate the champion after human review")
    p.add_argument("run_id")
    p.add_argument("--reason", required=True, help="why (kept in the registry's log)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", help="make the previous champion the champion again")
    p.add_argument("--reason", required=True, help="why (kept in the registry's log)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("serve", help="serve the base model and adapters over an OpenAI-compatible API")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default 8000)")
    p.add_argument("--served-model-name", default="base", help="the base model's name in requests (default: base)")
    p.add_argument("--lora-module", action="append", default=[], metavar="NAME=PATH",
                   help="an adapter to serve as NAME (repeatable); more can be loaded at run time")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), help="default: the config's model.dtype")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("export", help="merge an adapter into the base model and save it for serving")
    p.add_argument("--adapter", default="champion", metavar="ID|PATH|champion",
                   help="a promoted or stored adapter id, an adapter folder, or the champion (default)")
    p.add_argument("--out", required=True, metavar="DIR", help="the model folder to write (new or empty)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="weights dtype of the saved model; the merge itself runs in float32 (default float32)")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists and is not empty")
    p.set_defaults(func=cmd_export)

    review = sub.add_parser("review", help="human grading of a sample of outputs")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    p = review_sub.add_parser("export", help="write a sample of outputs with their rubric to grade (.csv or .jsonl)")
    p.add_argument("run_id", nargs="?", help="default: the latest run")
    p.add_argument("--out", required=True, metavar="PATH", help="file to write: .csv or .jsonl")
    p.add_argument("--n", type=int, default=50, help="outputs to sample (default 50)")
    p.add_argument("--suite", action="append", help="only this suite (repeatable)")
    p.add_argument("--role", default=CANDIDATE, choices=ROLES)
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.set_defaults(func=cmd_review_export)
    p = review_sub.add_parser("import", help="read graded rows back into the history store")
    p.add_argument("path", help="the graded .csv or .jsonl file")
    p.add_argument("--grader", help="grader name for rows that give none (default: your user name)")
    p.set_defaults(func=cmd_review_import)
    _config_option_everywhere(parser)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from harness.engine.serve import serve

    serve(_config(args), args.host, args.port, args.served_model_name, args.lora_module, args.dtype)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TunegateError as e:
        print(f"tunegate: error: {redact(str(e))}", file=sys.stderr)
        return 2
