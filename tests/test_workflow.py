"""The example GitHub Actions workflow: valid YAML, the right triggers, and the steps the gate needs."""
from __future__ import annotations

from fnmatch import fnmatch

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "tunegate.yml"


def load() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps() -> list[dict]:
    return load()["jobs"]["gate"]["steps"]


def triggers(path: str) -> bool:
    return any(fnmatch(path, pattern) for pattern in load()["on"]["pull_request"]["paths"])


def test_runs_on_pull_requests_touching_data_config_or_training_code():
    on = load()["on"]
    assert list(on) == ["pull_request"]
    for changed in ("fixtures/demo/train.jsonl", "fixtures/demo/golden.jsonl", "data/mine.jsonl", "tunegate.toml",
                    "configs/tunegate-large.toml", "training/sft.py", "training/callbacks.py", "suites/test_golden.py",
                    "harness/gates.py"):
        assert triggers(changed), changed
    for unrelated in ("README.md", "docs/guide.md", "benchmarks/notes.txt"):
        assert not triggers(unrelated), unrelated


def test_runs_the_suites_with_junit_and_fails_on_blocked():
    by_name = {s.get("name"): s for s in steps()}
    run = by_name["Run the suites"]["run"]
    assert "pytest suites/" in run and "--junitxml=reports/junit.xml" in run and 'echo "status=$?"' in run
    fail = by_name["Fail the check unless the adapter was promoted"]
    assert fail["if"] == "always() && steps.suites.outputs.status != '0'" and "exit 1" in fail["run"]
    assert steps()[-1] == fail  # last: nothing after it is skipped by the failure


def test_uploads_the_report_and_comments_the_summary():
    by_name = {s.get("name"): s for s in steps()}
    upload = by_name["Upload the HTML report"]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert "cp -rL reports/latest/." in by_name["Collect the report"]["run"]  # the symlink's target, not the link
    comment = by_name["Comment the summary on the pull request"]
    assert comment["with"]["path"] == "tunegate-report/summary.md" and comment["if"].startswith("always()")
    assert load()["permissions"]["pull-requests"] == "write"
