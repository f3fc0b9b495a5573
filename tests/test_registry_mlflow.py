"""The shared registry and history on a real MLflow server (started once for this module, on loopback):
two workspaces that point at it see one champion, one set of versions and events, and one history."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.cli import main as cli
from harness.config import load_config
from harness.errors import TunegateError
from harness.fingerprints import adapter_fingerprint, adapter_intact
from harness.store.backends import open_history, open_registry
from harness.store.history import Grade
from tests.test_e2e_suites import GOLDEN_ONLY, TRAIN, make_project
from tests.test_registry import make_adapter

pytest.importorskip("mlflow")

MLFLOW = Path(sys.executable).parent / "mlflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` with a SQLite store and served artifacts; killed (its whole process group) at the end."""
    root = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(
        [str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination",
         str(root / "artifacts"), "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1], "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # Its job runner (seven worker processes for GenAI jobs) is not needed here, and costs two busy cores.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    try:
        deadline = time.monotonic() + 180  # about 25 s on two busy cores
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield SimpleNamespace(url=url, root=root)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the uvicorn worker goes too
        try:
            proc.wait(timeout=3)  # a graceful shutdown waits for idle keep-alive connections: not worth it
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def registry_toml(url: str, name: str, task: str | None = None) -> str:
    """The [registry] of a server, and one task name, so that every project folder using it shares one champion."""
    return (f'[registry]\nbackend = "mlflow"\ntracking_uri = "{url}"\nexperiment = "{name}"\nmodel_name = "{name}"\n'
            f'[task]\nname = "{task or name}"\n')


def workspace_config(tmp_path: Path, ws: str, url: str, name: str, task: str | None = None) -> Path:
    """A project folder whose config points at the server (nothing else in it is used)."""
    root = tmp_path / ws
    root.mkdir()
    (root / "tunegate.toml").write_text(registry_toml(url, name, task))
    return root / "tunegate.toml"


def opened(toml: Path):
    config = load_config(toml)
    return open_registry(config, config.path(config.workspace.dir))


def promote(reg, tmp_path: Path, aid: str, run: str, action: str = "promote"):
    (tmp_path / "sources").mkdir(exist_ok=True)
    src = make_adapter(tmp_path / "sources", aid)
    return reg.promote(adapter_id=aid, fingerprint=adapter_fingerprint(src), source=src, run_id=run,
                       base_fingerprint="base-fp", config_hash="cfg", data={"train": "abc"},
                       metrics={"golden": {"candidate": {"pass_rate": 0.8}}}, gates=[], reason="all gates passed",
                       action=action)


def one_line_error(capsys, argv: list[str]) -> str:
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- without a server ------------------------------------------------------------------------------
def test_the_mlflow_backend_needs_a_tracking_uri(tmp_path):
    (tmp_path / "tunegate.toml").write_text('[registry]\nbackend = "mlflow"\n')
    with pytest.raises(TunegateError, match=r"key 'registry.tracking_uri': .*backend 'mlflow' needs the tracking "
                                            r"server's URL"):
        load_config(tmp_path / "tunegate.toml")


def test_an_unreachable_server_is_one_line_naming_the_key_and_writes_nothing(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    toml = workspace_config(tmp_path, "ws", url, "nowhere")
    for argv in (["registry", "list"], ["registry", "log"], ["history"], ["report"], ["rollback", "--reason", "x"],
                 ["promote", "20261122-000000-abcd", "--reason", "x"]):
        err = one_line_error(capsys, ["--config", str(toml), *argv])
        assert f"registry.tracking_uri = {url}: cannot reach the MLflow server" in err and "start it" in err
    assert sorted(p.name for p in toml.parent.iterdir()) == ["tunegate.toml"]  # no workspace, nothing half-written


def test_without_mlflow_installed_the_backend_says_how_to_install_it(tmp_path):
    toml = workspace_config(tmp_path, "ws", f"sqlite:///{tmp_path}/mlflow.db", "x")  # no server to probe
    # A None entry in sys.modules makes `import mlflow` fail as it does where the extra is not installed.
    code = ("import sys; sys.modules['mlflow'] = None; from harness.cli import main; "
            f"sys.exit(main(['--config', {str(toml)!r}, 'registry', 'list']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert out.returncode == 2 and out.stderr == ('tunegate: error: registry.backend = "mlflow" needs the mlflow '
                                                  'package: pip install "tunegate[mlflow]"\n')


# ---- the registry, in-process, on two workspaces ------------------------------------------------------
def test_two_workspaces_share_champion_versions_events_and_the_alias(server, tmp_path):
    from mlflow import MlflowClient

    name = "shared-registry"
    a, b = (opened(workspace_config(tmp_path, ws, server.url, name)) for ws in ("ws-a", "ws-b"))
    mlflow = MlflowClient(tracking_uri=server.url)
    assert a.champion() is None and b.versions() == [] and b.events() == []
    with pytest.raises(TunegateError, match="no adapter has been promoted yet"):
        b.rollback("oops")

    promote(a, tmp_path, "sft-aaa", "run-1")
    champ = b.champion()  # fetched from the server into B's workspace, checked against its fingerprint
    assert champ.adapter_id == "sft-aaa" and champ.path.is_relative_to(tmp_path / "ws-b")
    assert adapter_intact(champ.path, champ.fingerprint)
    assert (champ.path / "adapter_model.safetensors").read_bytes() == b"weights-sft-aaa"
    assert not [p for p in champ.path.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]

    promote(b, tmp_path, "sft-bbb", "run-2")
    promote(b, tmp_path, "sft-bbb", "run-3")  # the same adapter promoted again is not a new champion
    promote(b, tmp_path, "sft-ccc", "run-4", action="manual-promote")
    assert a.champion().adapter_id == "sft-ccc" and a.lineage() == ["sft-aaa", "sft-bbb", "sft-ccc"]
    assert [v.adapter_id for v in a.versions()] == ["sft-aaa", "sft-bbb", "sft-ccc"]
    assert a.version("sft-bbb").run_id == "run-2" and a.version("sft-bbb").metrics["golden"]["candidate"]["pass_rate"]

    # The server's own view: one model version per adapter, tagged by tunegate; the alias on the champion.
    model = mlflow.get_registered_model(name)
    by_adapter = {mv.tags["tunegate.adapter_id"]: mv for mv in mlflow.search_model_versions(f"name = '{name}'")}
    assert sorted(by_adapter) == ["sft-aaa", "sft-bbb", "sft-ccc"]
    assert model.aliases["champion"] == by_adapter["sft-ccc"].version
    ccc = by_adapter["sft-ccc"].tags
    assert (ccc["tunegate.fingerprint"], ccc["tunegate.base_fingerprint"], ccc["tunegate.run_id"]) == (
        a.version("sft-ccc").fingerprint, "base-fp", "run-4")

    old, new = a.rollback("ccc answers in French")
    assert (old.adapter_id, new.adapter_id) == ("sft-ccc", "sft-bbb")
    assert b.champion().adapter_id == "sft-bbb"
    assert mlflow.get_registered_model(name).aliases["champion"] == by_adapter["sft-bbb"].version
    old, new = b.rollback("bbb leaks training data")
    assert (old.adapter_id, new.adapter_id) == ("sft-bbb", "sft-aaa") and a.champion().adapter_id == "sft-aaa"
    with pytest.raises(TunegateError, match="sft-aaa is the only champion"):
        a.rollback("again")
    events = a.events()
    assert events == b.events()
    assert [e["action"] for e in events] == ["promote"] * 3 + ["manual-promote", "rollback", "rollback"]
    assert events[4]["adapter_id"] == "sft-bbb" and events[4]["run_id"] == "run-2"
    assert events[4]["reason"] == "ccc answers in French (replaces sft-ccc)"


def test_two_tasks_on_one_server_keep_their_own_champion_and_history(server, tmp_path):
    """The first task keeps registry.model_name, the other gets `<model_name>-<task>`; histories are apart."""
    from mlflow import MlflowClient

    name = "two-tasks"
    mlflow = MlflowClient(tracking_uri=server.url)
    tomls = {task: workspace_config(tmp_path, f"ws-{task}", server.url, name, task) for task in ("extract", "triage")}
    # A model from before tasks (untagged, with a champion): the first task to open it claims it.
    mlflow.create_registered_model(name)
    legacy = opened(tomls["extract"])
    assert legacy.champion() is None and legacy.name == name
    assert mlflow.get_registered_model(name).tags["tunegate.task"] == "extract"
    triage = opened(tomls["triage"])
    promote(legacy, tmp_path, "sft-ext", "run-1")
    assert triage.champion() is None and triage.versions() == [] and triage.events() == []
    promote(triage, tmp_path, "sft-tri", "run-2")
    assert legacy.champion().adapter_id == "sft-ext" and triage.champion().adapter_id == "sft-tri"
    assert mlflow.get_registered_model(f"{name}-triage").tags["tunegate.task"] == "triage"
    assert opened(tomls["triage"]).lineage() == ["sft-tri"]  # reopened: the same model, found by its tag

    histories = {}
    for task, toml in tomls.items():
        config = load_config(toml)
        histories[task] = open_history(config, config.path(config.workspace.dir))
    for i, task in enumerate(tomls):
        run_id = f"20261207-00000{i}-abcd"
        path = tmp_path / f"ws-{task}" / "reports" / run_id / "results.json"
        path.parent.mkdir(parents=True)
        results = {"run_id": run_id, "task": {"name": task}, "started_at": f"2026-12-07T00:00:0{i}+00:00",
                   "finished_at": "2026-12-07T00:01:00+00:00", "git_commit": None, "config_hash": "cfg", "data": {},
                   "verdict": {"status": "BLOCKED", "line": "x", "failed_gates": []}, "complete": True,
                   "candidate": None, "champion": None, "suites": {}, "gates": [], "examples": []}
        path.write_text(json.dumps(results))
        histories[task].record(results, path)
    assert [(r.run_id, r.task) for r in histories["extract"].runs()] == [("20261207-000000-abcd", "extract")]
    assert [r.run_id for r in histories["triage"].runs()] == ["20261207-000001-abcd"]
    with pytest.raises(TunegateError, match="belongs to task 'extract', not 'triage'"):
        histories["triage"].run("20261207-000000-abcd")


def test_a_damaged_local_copy_is_fetched_again_and_a_damaged_server_copy_is_refused(server, tmp_path):
    name = "damaged-copies"
    a, b = (opened(workspace_config(tmp_path, ws, server.url, name)) for ws in ("ws-a", "ws-b"))
    promote(a, tmp_path, "sft-ddd", "run-1")
    copy = b.champion().path
    (copy / "adapter_model.safetensors").write_bytes(b"bit rot")
    assert adapter_intact(b.champion().path, a.version("sft-ddd").fingerprint)  # downloaded again

    stored = [p for p in (server.root / "artifacts").rglob("adapter/adapter_model.safetensors")
              if p.read_bytes() == b"weights-sft-ddd"]
    assert len(stored) == 1
    stored[0].write_bytes(b"changed on the server")
    c = opened(workspace_config(tmp_path, "ws-c", server.url, name))
    with pytest.raises(TunegateError, match=r"the champion sft-ddd \(MLflow model damaged-copies version 1\) is "
                                            "missing files or does not match its fingerprint on the server"):
        c.champion()
    adapters = tmp_path / "ws-c" / ".tunegate" / "mlflow" / "adapters"
    assert [p.name for p in adapters.iterdir() if not p.name.endswith(".lock")] == []  # nothing half-fetched kept


def test_grades_imported_in_one_workspace_are_read_in_the_other(server, tmp_path):
    name = "shared-grades"
    configs = [load_config(workspace_config(tmp_path, ws, server.url, name)) for ws in ("ws-a", "ws-b")]
    a, b = (open_history(c, c.path(c.workspace.dir)) for c in configs)
    results = {"run_id": "20261123-000000-abcd", "started_at": "2026-11-23T00:00:00+00:00",
               "finished_at": "2026-11-23T00:01:00+00:00", "git_commit": None, "config_hash": "cfg",
               "data": {"train": "abc"}, "verdict": {"status": "BLOCKED", "line": "tunegate: BLOCKED: x",
                                                     "failed_gates": ["golden.pass_rate"]},
               "complete": True, "candidate": {"id": "sft-eee"}, "champion": None,
               "suites": {"golden": {"candidate": {"pass_rate": 0.5}}}, "gates": [], "examples": []}
    path = tmp_path / "ws-a" / "reports" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(results))
    a.record(results, path)
    run = b.run("20261123-000000-abcd")
    assert (run.status, run.failed_gates, run.metrics) == ("BLOCKED", ["golden.pass_rate"], results["suites"])
    with pytest.raises(TunegateError, match="did you mean 20261123-000000-abcd"):
        b.run("20261123-000000-abce")
    g = dict(run_id=run.run_id, suite="golden", example_id="g-1", role="candidate", grader="ann")
    a.add_grades([Grade(**g, passed=True), Grade(**{**g, "example_id": "g-2"}, passed=False)], source="first.csv")
    b.add_grades([Grade(**g, passed=False, note="on second thought")], source="second.csv")
    assert a.grades(run.run_id) == b.grades(run.run_id) == [
        Grade(**g, passed=False, note="on second thought"), Grade(**{**g, "example_id": "g-2"}, passed=False)]


# ---- end to end: two projects (two machines) on the same server ------------------------------------------
def run_suites(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q", *args],
                          cwd=root, capture_output=True, text=True)


def run_in_process(toml: Path):
    """What `pytest suites/` does for a golden-only project, called as the plugin calls it (no subprocess:
    a second pytest start costs half a minute here): check, train, evaluate, gate, then finish, which
    promotes through Run.promote and records the run."""
    from harness.run.run import Run
    from harness.suites import BUILTIN

    run = Run(toml)
    run.validate_inputs()
    run.adapter()
    for gate in BUILTIN["golden"].gates:
        run.evaluator.gate("golden", gate)
    return run.finish(0, complete=True)


def latest(root: Path) -> dict:
    return json.loads((root / "reports" / "latest" / "results.json").read_text())


@pytest.fixture(scope="module")
def two_projects(server, tmp_path_factory, tiny_model_dir, repo_root):
    """Project A promotes adapter X; then project B (another machine: its own workspace, other data) runs
    `pytest suites/`, which fetches X from the server as its champion, evaluates its adapter Y against it,
    and promotes Y."""
    name = "two-projects"
    a, b = (tmp_path_factory.mktemp(p) for p in ("project-a", "project-b"))
    make_project(SimpleNamespace(path=a), tiny_model_dir, repo_root, extra_config=GOLDEN_ONLY
                 + registry_toml(server.url, name))
    other = [{**t, "messages": [t["messages"][0], {"role": "assistant", "content": '{"category": "account"}'}]}
             for t in TRAIN]
    make_project(SimpleNamespace(path=b), tiny_model_dir, repo_root, train=other, extra_config=GOLDEN_ONLY
                 + registry_toml(server.url, name))
    started = time.monotonic()
    verdict_a = run_in_process(a / "tunegate.toml")
    assert verdict_a.status == "PROMOTED", verdict_a.line
    seconds_a = time.monotonic() - started
    out_b = run_suites(b)
    assert out_b.returncode == 0, out_b.stdout[-3000:] + out_b.stderr[-3000:]
    seconds_b = time.monotonic() - started - seconds_a
    return SimpleNamespace(a=a, b=b, name=name, out_b=out_b, seconds=(seconds_a, seconds_b))


def test_a_promotion_from_one_project_is_the_champion_of_the_other(two_projects, capsys):
    p = two_projects
    ra, rb = latest(p.a), latest(p.b)
    x, y = ra["candidate"], rb["candidate"]
    assert ra["verdict"]["status"] == rb["verdict"]["status"] == "PROMOTED" and x["id"] != y["id"]
    assert ra["champion"] is None and f"tunegate: PROMOTED {y['id']}" in p.out_b.stdout
    # B's run compared its candidate with A's champion, downloaded into B's workspace and loaded by its engine.
    assert (rb["champion"]["id"], rb["champion"]["fingerprint"]) == (x["id"], x["fingerprint"])
    assert Path(rb["champion"]["path"]).is_relative_to(p.b) and adapter_intact(Path(rb["champion"]["path"]),
                                                                                x["fingerprint"])
    assert {r["role"] for r in rb["examples"]} == {"base", "candidate", "champion"}
    assert {g["name"]: g["passed"] for g in rb["gates"]}["golden.noninferior_champion"] is True
    for root in (p.a, p.b):
        cli(["--config", str(root / "tunegate.toml"), "registry", "list"])
        listing = capsys.readouterr().out
        assert f"* {y['id']}" in listing and f"  {x['id']}" in listing


def test_a_run_against_a_dead_server_stops_before_training_with_one_line(two_projects, tmp_path):
    from harness.run.run import Run

    p = two_projects
    dead = f"http://127.0.0.1:{free_port()}"
    (p.b / "dead.toml").write_text(f'extends = "tunegate.toml"\n[registry]\ntracking_uri = "{dead}"\n')
    before = sorted(str(f.relative_to(p.b)) for f in p.b.rglob("*"))
    with pytest.raises(TunegateError) as e:  # the plugin shows it as a usage error: one line, no traceback
        Run(p.b / "dead.toml").validate_inputs()
    assert str(e.value).startswith(f"registry.tracking_uri = {dead}: cannot reach the MLflow server")
    assert "\n" not in str(e.value)
    assert sorted(str(f.relative_to(p.b)) for f in p.b.rglob("*")) == before  # nothing written, nothing trained


def test_both_projects_read_the_same_history_and_reports_trend_over_it(two_projects, server, capsys):
    from mlflow import MlflowClient

    p = two_projects
    ra, rb = latest(p.a), latest(p.b)
    histories = []
    for root in (p.a, p.b):
        config = load_config(root / "tunegate.toml")
        runs = open_history(config, config.path(config.workspace.dir)).runs()
        histories.append([(r.run_id, r.status, r.candidate_id, r.champion_id, r.metrics, r.gates) for r in runs])
    assert histories[0] == histories[1] == [
        (r["run_id"], "PROMOTED", r["candidate"]["id"], (r["champion"] or {}).get("id"), r["suites"], r["gates"])
        for r in (ra, rb)]
    cli(["--config", str(p.a / "tunegate.toml"), "history"])
    out = capsys.readouterr().out
    assert ra["run_id"] in out and rb["run_id"] in out

    # A re-renders B's report: B's results.json comes from the server; the trends span both runs.
    assert cli(["--config", str(p.a / "tunegate.toml"), "report", rb["run_id"]]) == 0
    html = Path(capsys.readouterr().out.split("report in ")[1].split("\n")[0])
    assert html.is_relative_to(p.a) and "2 run(s) in the history store" in html.read_text()

    # MLflow's own view of B's run: verdict, params, metrics, gate results and results.json.
    mlflow = MlflowClient(tracking_uri=server.url)
    exp = mlflow.get_experiment_by_name(p.name)
    (run,) = mlflow.search_runs([exp.experiment_id], filter_string=f"tags.`tunegate.run_id` = '{rb['run_id']}'")
    assert run.data.tags["tunegate.status"] == "PROMOTED" and run.info.status == "FINISHED"
    assert run.data.params["config_hash"] == rb["config_hash"] and run.data.params["data.train"] == rb["data"]["train"]
    assert run.data.metrics["golden.candidate.pass_rate"] == rb["suites"]["golden"]["candidate"]["pass_rate"]
    assert run.data.metrics["gate.golden.pass_rate.passed"] == 1.0
    assert {f.path for f in mlflow.list_artifacts(run.info.run_id)} >= {"results.json", "adapter", "tunegate"}


def test_rollback_from_one_project_moves_the_alias_for_both(two_projects, server, capsys):
    from mlflow import MlflowClient

    p = two_projects
    x, y = latest(p.a)["candidate"]["id"], latest(p.b)["candidate"]["id"]
    assert cli(["--config", str(p.b / "tunegate.toml"), "rollback", "--reason", "Y answers in French"]) == 0
    assert f"{x} (run {latest(p.a)['run_id']}) is the champion again; replaces {y}" in capsys.readouterr().out
    mlflow = MlflowClient(tracking_uri=server.url)
    champion = mlflow.get_model_version_by_alias(p.name, "champion")
    assert champion.tags["tunegate.adapter_id"] == x
    cli(["--config", str(p.a / "tunegate.toml"), "registry", "list"])
    assert f"* {x}" in capsys.readouterr().out
    cli(["--config", str(p.a / "tunegate.toml"), "registry", "log"])
    task, *log = capsys.readouterr().out.splitlines()
    assert task == f"task {p.name}" and [line.split()[1] for line in log] == ["promote", "promote", "rollback"]
    assert "Y answers in French (replaces" in log[-1]
    print(f"project A (in-process) {p.seconds[0]:.0f} s, project B (`pytest suites/`) {p.seconds[1]:.0f} s")
