"""The verdict rules, without pytest or a model."""
from harness.gates import GateResult
from harness.session import RunSession
from harness.suites import SUITES


def session(repo_root, gates):
    run = RunSession(repo_root / "tunegate.toml")
    for name, passed in gates.items():
        run.record_gate(GateResult(name, "golden", "absolute", passed, 0.5))
    return run


# Every gate of every suite the default config enables; comparisons with a champion are n/a (no champion yet).
ALL_OK = {f"{s}.{g}": None if "champion" in g else True for s, suite in SUITES.items() for g in suite.GATES}


def test_all_gates_hold_on_a_complete_run_promotes(repo_root):
    v = session(repo_root, ALL_OK).decide(0, complete=True)
    assert v.status == "PROMOTED"


def test_failed_gates_are_named(repo_root):
    v = session(repo_root, {**ALL_OK, "golden.pass_rate": False, "golden.critical": False}).decide(1, complete=True)
    assert v.status == "BLOCKED" and v.line == "tunegate: BLOCKED: golden.pass_rate, golden.critical"


def test_other_failures_block_even_when_gates_hold(repo_root):
    v = session(repo_root, ALL_OK).decide(1, complete=True)
    assert v.status == "BLOCKED" and "pytest exit status 1" in v.line
    aborted = session(repo_root, {}).decide(1, complete=True, aborted="training diverged")
    assert aborted.line == "tunegate: BLOCKED: training diverged"


def test_partial_or_missing_gates_never_promote(repo_root):
    assert session(repo_root, ALL_OK).decide(0, complete=False).status == "NOT PROMOTED"
    missing = {k: v for k, v in ALL_OK.items() if k != "golden.critical"}
    v = session(repo_root, missing).decide(0, complete=True)
    assert v.status == "NOT PROMOTED" and "golden.critical" in v.line
