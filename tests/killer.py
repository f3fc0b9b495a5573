"""A pytest plugin the kill tests load into a child `pytest suites/` run (`-p tests.killer`).

With TUNEGATE_KILL_IN=<phase>, TUNEGATE_KILL_CALL=<n> and TUNEGATE_KILL_AFTER=<seconds>, the n-th call
(from 0) of that phase's function arms a timer thread that sends SIGKILL to the process that many
seconds later (or when the call returns, if that comes first). The thread fires even while the main
thread is inside C code (a SQLite commit, a file write, a matmul), so the kill lands wherever the process
happens to be. Every call's entry and exit
is appended to TUNEGATE_KILL_LOG, so the test can tell whether the kill landed inside the phase and
how long each call takes (a run without TUNEGATE_KILL_IN only measures).
"""
from __future__ import annotations

import functools
import importlib
import os
import signal
import sys
import threading
import time

PHASES = {
    "training": ("training.train", None, "train"),
    "generation": ("harness.engine.local", "Engine", "generate"),
    "cache-write": ("harness.store.cache", "ResultCache", "put_many"),
    "promotion": ("harness.store.registry", "Registry", "promote"),
    "report": ("harness.report", None, "write_reports"),
}


def _log(line: str) -> None:
    with open(os.environ["TUNEGATE_KILL_LOG"], "a") as f:
        f.write(f"{line} {time.monotonic():.6f}\n")


def _wrap(phase: str, fn, kill: tuple[int, float] | None):
    calls = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        armed = kill is not None and len(calls) == kill[0]
        if armed:
            timer = threading.Timer(kill[1], os.kill, (os.getpid(), signal.SIGKILL))
            timer.daemon = True
            timer.start()
        calls.append(phase)
        _log(f"enter {phase}")
        out = fn(*args, **kwargs)
        if armed:
            # The call ended before its moment came (it ran faster than in the reference run, as it may on
            # a machine whose load changed): the kill lands at its last instruction instead, still inside
            # the phase, rather than after the run has finished and nothing is left to kill.
            os.kill(os.getpid(), signal.SIGKILL)
        _log(f"exit {phase}")
        return out

    return wrapper


def pytest_configure(config) -> None:
    if "TUNEGATE_KILL_LOG" not in os.environ:
        return
    sys.setswitchinterval(1e-4)  # let the timer thread take the GIL promptly during short phases
    target = os.environ.get("TUNEGATE_KILL_IN")
    for phase, (module_name, class_name, attr) in PHASES.items():
        owner = importlib.import_module(module_name)
        if class_name:
            owner = getattr(owner, class_name)
        kill = (int(os.environ["TUNEGATE_KILL_CALL"]), float(os.environ["TUNEGATE_KILL_AFTER"])) \
            if phase == target else None
        setattr(owner, attr, _wrap(phase, getattr(owner, attr), kill))
