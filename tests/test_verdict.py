"""The verdict and the partial-run rule: pure functions, without pytest, a model or a config."""
from harness.gating.gates import GateResult
from harness.run.verdict import decide, is_complete
from harness.suites import BUILTIN

# Every gate of every built-in suite; comparisons with a champion are n/a (no champion yet).
EXPECTED = [s.gate_name(g) for s in BUILTIN.values() for g in s.gates]  # in run order
ALL_OK = {name: None if "champion" in name else True for name in EXPECTED}


def verdict(gates: dict, status: int = 0, complete: bool = True, aborted: str = ""):
    results = {name: GateResult(name, name.split(".")[0], "absolute", passed, 0.5) for name, passed in gates.items()}
    return decide(results, EXPECTED, "sft-1", pytest_status=status, complete=complete, aborted=aborted)


def test_all_gates_hold_on_a_complete_run_promotes():
    v = verdict(ALL_OK)
    assert v.status == "PROMOTED" and v.line == "tunegate: PROMOTED sft-1"


def test_failed_gates_are_named():
    v = verdict({**ALL_OK, "golden.pass_rate": False, "golden.critical": False}, status=1)
    assert v.status == "BLOCKED" and v.line == "tunegate: BLOCKED: golden.pass_rate, golden.critical"


def test_other_failures_block_even_when_gates_hold():
    v = verdict(ALL_OK, status=1)
    assert v.status == "BLOCKED" and "pytest exit status 1" in v.line
    assert verdict({}, status=1, aborted="training diverged").line == "tunegate: BLOCKED: training diverged"


def test_partial_or_missing_gates_never_promote():
    assert verdict(ALL_OK, complete=False).status == "NOT PROMOTED"
    missing = {k: v for k, v in ALL_OK.items() if k != "golden.critical"}
    v = verdict(missing)
    assert v.status == "NOT PROMOTED" and "golden.critical" in v.line


def test_a_run_is_complete_only_with_every_item_and_gate_collected():
    expected = {"golden": {"example": {"a", "b"}, "gate": {"pass_rate"}}, "mmlu": {"subject": {"x"}, "gate": {"g"}}}
    assert is_complete(expected, expected, deselected=False)
    assert not is_complete(expected, expected, deselected=True)  # -k / -m deselected something
    narrowed = {"golden": {"example": {"a"}, "gate": {"pass_rate"}}, "mmlu": expected["mmlu"]}
    assert not is_complete(narrowed, expected, deselected=False)
    assert not is_complete({"golden": expected["golden"]}, expected, deselected=False)  # a suite not collected
    extra = {**expected, "other": {"gate": {"x"}}}  # tests of a suite the config does not expect change nothing
    assert is_complete(extra, expected, deselected=False)
