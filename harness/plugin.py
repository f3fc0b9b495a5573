"""tunegate's pytest plugin: options, markers, fixtures and the end-of-session verdict.

It stays inert unless the collected tests include a suite (marked `tunegate_suite`), so the
plugin being installed never changes an unrelated test run. Hook bodies only call plain
functions from `harness.run`. Whatever it prints, and pytest's reports of suite tests, go through
`harness.redaction` first, so secrets in the environment or in URLs never reach the terminal or JUnit XML.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.config import config_path
from harness.errors import TunegateError
from harness.redaction import redact, redact_test_report
from harness.run.evaluation import unavailable
from harness.run.run import Run
from harness.run.verdict import Coverage, Verdict, is_complete
from harness.suites.api import Evaluation

MARKER = "tunegate_suite"


@dataclass
class PluginState:
    config: pytest.Config
    error: TunegateError | None = None
    active: bool = False
    deselected: bool = False
    complete: bool = False
    aborted: str = ""
    verdict: Verdict | None = None
    _run: Run | None = field(default=None, repr=False)

    @property
    def run(self) -> Run:
        if self._run is None:
            opt = self.config.getoption
            adapter = opt("tunegate_adapter")
            self._run = Run(
                # The folder pytest runs from, not rootdir: an --adapter path outside the project
                # would move rootdir to a common ancestor.
                config_path(opt("tunegate_config"), self.config.invocation_params.dir),
                retrain=opt("tunegate_retrain"),
                adapter_path=Path(adapter) if adapter else None,
            )
        return self._run


STATE = pytest.StashKey[PluginState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tunegate")
    group.addoption("--tunegate-config", dest="tunegate_config", metavar="PATH",
                    help="config file (default: $TUNEGATE_CONFIG, else ./tunegate.toml)")
    group.addoption("--retrain", dest="tunegate_retrain", action="store_true",
                    help="train the adapter even if one trained on the same inputs is stored")
    group.addoption("--adapter", dest="tunegate_adapter", metavar="PATH",
                    help="evaluate this PEFT adapter folder instead of training one")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(name): marks a module as the tunegate suite `name`")
    config.stash[STATE] = PluginState(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize a suite's per-item tests with its items and its gate test with its gates."""
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    state = metafunc.config.stash[STATE]
    try:
        suite, settings = state.run.inputs.suite(marker.args[0])
    except TunegateError as e:  # reported as a usage error once collection is done
        state.error = e
        return
    running = suite.name in state.run.inputs.enabled_suites()
    if "gate" in metafunc.fixturenames:
        gates = suite.gates
        if running:
            try:  # some gates are off for want of the user's data, which this reads
                gates = state.run.inputs.active_gates(suite.name)
            except TunegateError as e:
                state.error, gates = e, suite.active_gates(settings)
        metafunc.parametrize("gate", gates)
    params = [p for p in suite.params if p in metafunc.fixturenames]
    items: dict[str, list] = {}
    try:
        if params and running:
            items = state.run.inputs.items(suite.name)
    except TunegateError as e:
        state.error = e
    for param in params:
        got = items.get(param, [])
        metafunc.parametrize(param, got, ids=[redact(item.id) for item in got])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the tests of suites that do not run (disabled, or off for want of data): they are not part of
    this project's run, and the report says why."""
    if not any(item.get_closest_marker(MARKER) for item in items):
        return
    try:
        enabled = set(config.stash[STATE].run.inputs.enabled_suites())
    except TunegateError:
        return  # the config error is reported once collection is done
    items[:] = [i for i in items if (m := i.get_closest_marker(MARKER)) is None or m.args[0] in enabled]


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker(MARKER) for item in items):
        items[0].config.stash[STATE].deselected = True


def coverage(items: list[pytest.Item]) -> dict[str, dict[str, set]]:
    """Which items and gates of each suite were collected."""
    seen: dict[str, dict[str, set]] = {}
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        entry = seen.setdefault(marker.args[0], {})
        for param, value in params.items():
            ident = value if param == "gate" else getattr(value, "id", None)  # None: an empty parameter set
            if ident is not None:
                entry.setdefault(param, set()).add(ident)
    return seen


def expected_coverage(run: Run) -> Coverage:
    """Every item and gate of every enabled suite: what a complete run collects."""
    out = {}
    for name in run.inputs.enabled_suites():
        suite, _ = run.inputs.suite(name)
        out[name] = {param: {item.id for item in items} for param, items in run.inputs.items(name).items()}
        out[name]["gate"] = set(run.inputs.active_gates(name))
    return out


def pytest_collection_finish(session: pytest.Session) -> None:
    state = session.config.stash[STATE]
    state.active = state.error is not None or any(item.get_closest_marker(MARKER) for item in session.items)
    if not state.active:
        return
    try:
        if state.error is not None:
            raise state.error
        state.run.validate_inputs()
    except TunegateError as e:
        state.active = False
        raise pytest.UsageError(redact(str(e))) from None
    state.complete = is_complete(coverage(session.items), expected_coverage(state.run), state.deselected)


@pytest.fixture(scope="session")
def tunegate_run(request: pytest.FixtureRequest) -> Run:
    """The run: config, data, registry, results."""
    return request.config.stash[STATE].run


@pytest.fixture(scope="session")
def adapter(request: pytest.FixtureRequest, tunegate_run: Run):
    """The candidate adapter: --adapter PATH, the stored one trained on the same inputs, or a new one."""
    # Training prints its progress live; pytest would otherwise hold it until the end.
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext(), aborts_on_error(request):
        return tunegate_run.adapter()


@contextlib.contextmanager
def aborts_on_error(request: pytest.FixtureRequest):
    """A TunegateError (training diverged, memory ran out at one row, ...) ends the run with its one line,
    and the verdict names it, instead of a fixture error with a traceback in every test that needs it."""
    try:
        yield
    except TunegateError as e:
        request.config.stash[STATE].aborted = redact(str(e))
        pytest.exit(redact(f"tunegate: {e}"), returncode=1)


@pytest.fixture(scope="session")
def engine(tunegate_run: Run, adapter):
    """The shared engine: one base model, adapters switched per role."""
    return tunegate_run.evaluator.engine


@pytest.fixture(scope="module")
def evaluation(request: pytest.FixtureRequest, tunegate_run: Run) -> Evaluation:
    """The evaluation of the suite this module is marked with (every role, once per session)."""
    name = request.node.get_closest_marker(MARKER).args[0]
    suite, settings = tunegate_run.inputs.suite(name)
    if reason := tunegate_run.inputs.off_suites().get(name):
        pytest.skip(f"suite '{name}' is off: {reason}")
    if reason := unavailable(tunegate_run.config, name, suite.needs_logprobs):
        pytest.skip(reason)
    with aborts_on_error(request):
        request.getfixturevalue("engine")
        return tunegate_run.evaluator.evaluation(name)


def _suite_of(request: pytest.FixtureRequest) -> str:
    return request.node.get_closest_marker(MARKER).args[0]


def check_item(request: pytest.FixtureRequest, param: str, item) -> None:
    """The body of every suite's per-item test: pass, xfail with the reason, or fail."""
    run = request.config.stash[STATE].run
    result = run.evaluator.check(_suite_of(request), param, item)
    if result.status == "xfail":
        pytest.xfail(result.message)
    if result.status == "fail":
        pytest.fail(result.message, pytrace=False)


def check_gate(request: pytest.FixtureRequest, gate: str) -> None:
    """The body of every suite's gate test: compute, record, then skip (n/a) or assert."""
    result = request.config.stash[STATE].run.evaluator.gate(_suite_of(request), gate)
    if result.passed is None:
        pytest.skip(result.detail)
    assert result.passed, result.describe()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Redact suite tests' failure text, xfail reasons and captured output before the terminal and
    JUnit XML see them (tryfirst: the outermost wrapper, so it runs after skipping has set `wasxfail`)."""
    report = yield
    if item.get_closest_marker(MARKER) is not None:
        redact_test_report(report)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[STATE]
    if not state.active or session.config.option.collectonly:
        return
    try:
        state.verdict = state.run.finish(int(exitstatus), state.complete, state.aborted)
    except TunegateError as e:  # a shared registry or history that failed mid-finish: one line, not INTERNALERROR
        print(redact(f"tunegate: the run could not finish: {e}"), file=sys.stderr, flush=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if state.verdict.status == "BLOCKED" and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    # Printed here, after pytest's own summary, so the verdict is the run's last line.
    state = config.stash.get(STATE, None)
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if state is None or state.verdict is None or reporter is None:
        return
    if state.run.results_path:
        reporter.write_line(f"tunegate: results in {state.run.results_path}")
    if state.run.report_paths:
        reporter.write_line(f"tunegate: report in {state.run.report_paths.html}")
    if state.run.results:
        from harness.report.summary import terminal_lines  # (loaded by finish() already)

        for line in terminal_lines(state.run.results):  # the task, what was not checked, why it was blocked
            reporter.write_line(redact(line))
    ok = state.verdict.status == "PROMOTED"
    reporter.write_line(redact(state.verdict.line), bold=True, green=ok, red=not ok)
