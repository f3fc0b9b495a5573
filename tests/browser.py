"""Headless Chromium for report tests: a screenshot and the DOM after the page's script ran.

Tests skip when no Chromium is installed, unless TUNEGATE_REQUIRE_BROWSER is set (CI sets it, so a
missing browser fails there instead of passing silently).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    """The browser's path, or skip (fail under TUNEGATE_REQUIRE_BROWSER)."""
    found = next((p for p in map(shutil.which, NAMES) if p), None)
    if found is None:
        reason = "no headless Chromium on PATH (apt-get install chromium)"
        if os.environ.get("TUNEGATE_REQUIRE_BROWSER"):
            pytest.fail(reason + "; TUNEGATE_REQUIRE_BROWSER is set")
        pytest.skip(reason)
    return found


def _run(url: str, *extra: str, timeout: int = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="tunegate-chromium-") as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *extra, url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"chromium exited {out.returncode}: {out.stderr[-2000:]}")
    return out


def url(path: Path, fragment: str = "") -> str:
    return Path(path).resolve().as_uri() + fragment


def dump_dom(path: Path, fragment: str = "") -> str:
    """The serialized DOM once the page loaded and its script ran."""
    return _run(url(path, fragment), "--virtual-time-budget=5000", "--dump-dom").stdout


def screenshot(path: Path, out: Path, width: int = 1280, height: int = 2400) -> Path:
    _run(url(path), f"--screenshot={out}", f"--window-size={width},{height}", "--virtual-time-budget=5000")
    return out


def ink(png: Path) -> tuple[float, float]:
    """(share of pixels that are not near-white, grey-level standard deviation): both ~0 for a blank page."""
    from PIL import Image, ImageStat

    grey = Image.open(png).convert("L")
    hist = grey.histogram()
    dark = sum(hist[:235]) / (grey.width * grey.height)
    return dark, ImageStat.Stat(grey).stddev[0]
