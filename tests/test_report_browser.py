"""The report in a real browser (headless Chromium): it renders, hostile outputs stay inert text,
and the drill-down filters work."""
from __future__ import annotations

import re

import pytest

from harness import atomic
from harness.report import html
from tests import browser
from tests.report_data import HOSTILE, results
from tests.test_report import parse


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "index.html"
    atomic.write_text(path, html.render(results(n=30, hostile=True), [], []))
    return path


def rows(dom: str) -> list[dict]:
    return [attrs for tag, attrs in parse(dom).tags if tag == "tr" and "data-suite" in attrs]


def test_hostile_outputs_render_as_text_and_never_run(hostile_page):
    dom = browser.dump_dom(hostile_page)
    doc = parse(dom)
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "PWNED" not in title and title.startswith("tunegate BLOCKED")  # no payload changed the title
    assert [t for t, _ in doc.tags if t == "script"] == ["script"]
    assert not any(t in ("img", "iframe") for t, _ in doc.tags)
    assert not any(name.startswith("on") for _, attrs in doc.tags for name in attrs)
    assert not any("javascript:" in attrs.get("href", "") for _, attrs in doc.tags)
    shown = "\n".join(doc.pre_text)
    for attack in HOSTILE:
        assert attack in shown


def test_csp_blocks_markup_that_escaped_escaping(tmp_path):
    """Defence in depth: even raw markup spliced into the page (as if escaping failed) cannot run."""
    page = html.render(results(n=6), [], [])
    injected = ('<script>document.title="PWNED-inline"</script>'
                '<img src="data:," onerror="document.title=\'PWNED-handler\'">'
                '<script src="https://evil.example/x.js"></script>')
    path = tmp_path / "index.html"
    path.write_text(page.replace("<main>", "<main>" + injected, 1))
    dom = browser.dump_dom(path)
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "PWNED" not in title and title.startswith("tunegate")
    # our own script did run (it shows the filter form), so the title test above is meaningful
    assert re.search(r'<form id="filters"(?! hidden)', dom)


def test_report_renders_a_non_blank_page(hostile_page, tmp_path):
    png = browser.screenshot(hostile_page, tmp_path / "shot.png")
    dark, spread = browser.ink(png)
    assert dark > 0.01 and spread > 10, (dark, spread)
    blank = tmp_path / "blank.html"  # the measure's control: an empty page has no ink
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert browser.ink(browser.screenshot(blank, tmp_path / "blank.png")) == (0.0, 0.0)


@pytest.mark.parametrize("fragment, keep", [
    ("", lambda r: True),
    ("#show:failed=1", lambda r: r["data-failed"] == "1"),
    ("#show:regressed=1", lambda r: r["data-regressed"] == "1"),
    ("#show:suite=safety", lambda r: r["data-suite"] == "safety"),
    ("#show:suite=golden&failed=1", lambda r: r["data-suite"] == "golden" and r["data-failed"] == "1"),
    ("#show:slice=0", lambda r: "0" in r["data-slices"].split()),  # the first slice label
])
def test_filters_hide_exactly_the_rows_that_do_not_match(hostile_page, fragment, keep):
    page_rows = rows(hostile_page.read_text())
    dom = browser.dump_dom(hostile_page, fragment)
    got = rows(dom)
    assert len(got) == len(page_rows) == 30
    expected = sum(1 for r in got if keep(r))
    shown = [r for r in got if "hidden" not in r]
    assert len(shown) == expected and all(keep(r) for r in shown)
    assert 0 < expected and (expected < len(got) if fragment else expected == len(got))
    assert re.search(rf'<span id="shown">{expected}</span>', dom)
