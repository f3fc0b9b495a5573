"""tunegate's pytest plugin: options, markers, fixtures and the end-of-session verdict.

It stays inert unless the collected tests include a suite (marked `tunegate_suite`), so the
plugin being installed never changes an unrelated test run. Hook bodies only call plain
functions from `harness.session`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.config import config_path
from harness.errors import TunegateError
from harness.session import RunSession, Verdict
from harness.suites import SUITES

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
    _run: RunSession | None = field(default=None, repr=False)

    @property
    def run(self) -> RunSession:
        if self._run is None:
            opt = self.config.getoption
            adapter = opt("tunegate_adapter")
            self._run = RunSession(
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
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None or "example" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    try:
        examples = state.run.suite_examples(marker.args[0])
    except TunegateError as e:  # reported as a usage error once collection is done
        state.error, examples = e, []
    metafunc.parametrize("example", examples, ids=[ex.id for ex in examples])


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker(MARKER) for item in items):
        items[0].config.stash[STATE].deselected = True


def coverage(items: list[pytest.Item]) -> dict[str, dict[str, set]]:
    """Which examples and gates of each suite were collected."""
    seen: dict[str, dict[str, set]] = {}
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        entry = seen.setdefault(marker.args[0], {"examples": set(), "gates": set()})
        if "example" in params:
            entry["examples"].add(params["example"].id)
        if "gate" in params:
            entry["gates"].add(params["gate"])
    return seen


def is_complete(seen: dict[str, dict[str, set]], run: RunSession, deselected: bool) -> bool:
    """A run may promote only if every enabled suite was collected whole."""
    if deselected:
        return False
    for name in run.enabled_suites():
        got = seen.get(name, {"examples": set(), "gates": set()})
        if got["examples"] != {ex.id for ex in run.suite_examples(name)} or got["gates"] != set(SUITES[name].gates):
            return False
    return True


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
        raise pytest.UsageError(str(e)) from None
    state.complete = is_complete(coverage(session.items), state.run, state.deselected)


@pytest.fixture(scope="session")
def tunegate_run(request: pytest.FixtureRequest) -> RunSession:
    """The run: config, data, registry, results."""
    return request.config.stash[STATE].run


@pytest.fixture(scope="session")
def adapter(request: pytest.FixtureRequest, tunegate_run: RunSession):
    """The candidate adapter: --adapter PATH, the stored one trained on the same inputs, or a new one."""
    # Training prints its progress live; pytest would otherwise hold it until the end.
    capman = request.config.pluginmanager.getplugin("capturemanager")
    try:
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            return tunegate_run.adapter()
    except TunegateError as e:
        request.config.stash[STATE].aborted = str(e)
        pytest.exit(f"tunegate: {e}", returncode=1)


@pytest.fixture(scope="session")
def engine(tunegate_run: RunSession, adapter):
    """The shared engine: one base model, adapters switched per role."""
    return tunegate_run.engine()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[STATE]
    if not state.active or session.config.option.collectonly:
        return
    state.verdict = state.run.finish(int(exitstatus), state.complete, state.aborted)
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
    ok = state.verdict.status == "PROMOTED"
    reporter.write_line(state.verdict.line, bold=True, green=ok, red=not ok)
