"""The HTML report and the Markdown summary, rendered from schema-valid results (no browser here)."""
from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from harness.report import html, summary
from harness.report.view import example_rows, gate_deltas, top_regressions
from tests.report_data import HOSTILE, results


class Elements(HTMLParser):
    """Every element and attribute the browser would build, and the text of each <pre>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.pre_text: list[str] = []
        self.scripts: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in.append(tag)
        if tag == "pre":
            self.pre_text.append("")
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in.pop() != tag:
                pass

    def handle_data(self, data):
        if "pre" in self._in and self.pre_text:
            self.pre_text[-1] += data
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data


def parse(page: str) -> Elements:
    p = Elements()
    p.feed(page)
    return p


def test_hostile_outputs_are_text_and_the_only_script_is_ours():
    page = html.render(results(hostile=True), [], [])
    doc = parse(page)
    # the attacks appear only as text: no element or event-handler attribute came from them
    assert [t for t, _ in doc.tags if t == "script"] == ["script"]
    assert not any(name.startswith("on") for _, attrs in doc.tags for name in attrs)
    assert not any(t in ("img", "iframe") for t, _ in doc.tags)
    assert not any("javascript:" in (attrs.get("href") or "") for _, attrs in doc.tags)
    texts = "\n".join(doc.pre_text)
    for attack in HOSTILE:
        assert attack in texts  # shown, character for character, as text
    assert "&lt;script&gt;document.title" in page


def test_csp_pins_the_inline_script_and_stylesheet_by_hash():
    page = html.render(results(), [], [])
    doc = parse(page)
    policy = next(a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy.split("style-src-attr")[0]
    digest = base64.b64encode(hashlib.sha256(doc.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() in policy
    # offline: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_regressions_are_failed_items_a_baseline_passed_critical_first():
    rows = example_rows(results(n=40))
    top = top_regressions(rows)
    assert top[0].critical_failed
    assert all(r.failed for r in top)
    assert all(r.regressed_vs or r.critical_failed for r in top)
    lost = [r.regressed_vs for r in top if not r.critical_failed]
    assert lost == sorted(lost, key=lambda x: ("champion" not in x, "base" not in x))


def test_gate_deltas_against_base_and_champion():
    g = {"value": 0.7, "base_value": 0.2, "champion_value": None, "baseline_role": "champion", "baseline": 0.75}
    d = gate_deltas(g)
    assert round(d["base"], 6) == 0.5 and round(d["champion"], 6) == -0.05 and d["champion_value"] == 0.75


def test_summary_shows_verdict_gates_and_regressions_with_output_escaped():
    text = summary.render(results(hostile=True))
    assert text.startswith("## tunegate: BLOCKED")
    assert "| `golden.pass_rate` | \u274c FAILED |" in text
    assert "### Top regressed examples" in text
    assert "<script" not in text and "<img" not in text and "@octocat" not in text
    # a model output cannot break out of its table row
    table = text.split("### Top regressed examples")[1].splitlines()
    assert all(line.count(" | ") - line.count("\\|") == 4 for line in table if line.startswith("| ") and "---" not in line
               and "suite" not in line)


def test_summary_fits_a_pr_comment_whatever_the_run_size():
    huge = results(n=3000, output_len=20_000)
    huge["gates"] = huge["gates"] * 400
    text = summary.render(huge)
    assert len(text) < 65_000
    assert "more" in text.splitlines()[-1]  # says what it left out
    small = summary.render(results(n=3000, output_len=20_000))
    assert len(small) < 65_000 and "Top regressed examples (15 of" in small


def hostile_blocked_run() -> dict:
    r = results(hostile=True)
    failed = next(g["name"] for g in r["gates"] if g["passed"] is False)
    r["task"] = {"name": "extraction", "description": HOSTILE[0]}
    r["coverage"] = {"checked": [{"suite": "golden", "failure_mode": "task quality and format",
                                  "gates": ["golden.pass_rate"], "gates_off": {"golden.x": HOSTILE[3]}}],
                     "off": [{"suite": "safety", "failure_mode": HOSTILE[1], "reason": HOSTILE[2]}]}
    r["movers"] = {failed: [{"example_id": HOSTILE[4], "question": HOSTILE[5], "candidate": HOSTILE[1],
                             "baseline": HOSTILE[3], "baseline_role": "base", "why": HOSTILE[0]}]}
    return r


def test_coverage_task_and_movers_are_shown_as_text_near_the_top():
    from harness.store.results import validate

    r = hostile_blocked_run()
    validate(r)
    page = html.render(r, [], [])
    doc = parse(page)
    assert [t for t, _ in doc.tags if t == "script"] == ["script"]
    assert not any(name.startswith("on") for _, attrs in doc.tags for name in attrs)
    assert not any(t in ("img", "iframe", "svg") and not attrs.get("xmlns") for t, attrs in doc.tags)
    assert HOSTILE[1] in "\n".join(doc.pre_text) and HOSTILE[3] in "\n".join(doc.pre_text)
    # Near the top: the header says what was not checked; the first section says why it was blocked.
    assert page.index('id="coverage"') < page.index("<main>") < page.index('id="blocked"') < page.index('id="gates"')
    assert '<strong id="task">extraction</strong>' in page
    text = summary.render(r)
    assert "task `extraction`" in text and "### Why it was blocked" in text and "**Not checked:** safety" in text
    assert "<img" not in text and "<iframe" not in text and "<script" not in text
    lines = summary.terminal_lines(r)
    assert lines[0] == "tunegate: task extraction" and lines[1].startswith("tunegate: not checked: safety (")
    assert any(line.startswith("  asked ") and "\n" not in line for line in lines)


def test_results_from_before_coverage_and_movers_still_render():
    r = results()
    for key in ("task", "coverage", "movers"):
        r.pop(key, None)
    page = html.render(r, [], [])
    assert 'id="coverage"' not in page and 'id="blocked"' not in page and 'id="gates"' in page
    assert summary.terminal_lines(r) == [] and "task" not in summary.render(r)[:200]
