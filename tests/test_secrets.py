"""Secrets (API keys in the environment, credentials in URLs) never reach results, reports, the
history store, tunegate's messages or pytest's output: unit tests of harness.redaction, each write
boundary on its own, and one end-to-end run of the real suites with secrets in the data."""
from __future__ import annotations

import json
import secrets
import types
from pathlib import Path

import pytest

from harness import redaction
from harness.redaction import Redactor, env_secrets, redact_test_report
from harness.report import write_reports
from harness.store import results as results_io
from harness.store.history import History
from tests.report_data import results as sample_results
from tests.test_e2e_suites import ALWAYS, golden_rows, latest_results, make_project, run

pytest_plugins = ["pytester"]

RANDOM = {name: secrets.token_hex(n) for name, n in (("openai", 12), ("hf", 12), ("url", 8))}
OPENAI = "sk-test-" + RANDOM["openai"]
HF = "hf_" + RANDOM["hf"]
URL_PASSWORD = "pw" + RANDOM["url"]  # in no environment variable: found only as a URL's password
DB_URL = f"https://svc:{URL_PASSWORD}@db.example.com/tickets"
# Any 10 characters of a secret's random part count as a leak: a secret cut in half is still one.
PIECES = {secret: {part[i:i + 10] for i in range(len(part) - 9)}
          for secret, part in zip((OPENAI, HF, URL_PASSWORD), RANDOM.values())}


@pytest.fixture
def secret_env(monkeypatch):
    """Secrets in this process's environment (and in the children pytester starts)."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    monkeypatch.setenv("HF_TOKEN", HF)


def leaked(text: str) -> list[str]:
    """The secrets of which `text` holds the whole or a piece."""
    return [s for s, pieces in PIECES.items() if any(p in text for p in pieces)]


# ---- finding the secrets -------------------------------------------------------------------------

def test_secret_names_with_long_values_are_secrets_and_nothing_else(tmp_path):
    sock = tmp_path / "agent.sock"
    sock.touch()
    aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    environ = {
        "OPENAI_API_KEY": OPENAI, "HF_TOKEN": HF, "WANDB_API_KEY": "w" * 40,
        "AWS_SECRET_ACCESS_KEY": aws, "MLFLOW_TRACKING_PASSWORD": "hunter2hunter2",
        "SHORT_TOKEN": "abc123", "OPENAI_KEY_PLACEHOLDER": "EMPTY",  # too short to tell from ordinary text
        "TOKENIZERS_PARALLELISM": "false", "GIT_AUTHOR_NAME": "Jane Doe Smith",  # names that only look secret
        "PIP_KEYRING_PROVIDER": "subprocess",  # KEY inside a word: redacting it would garble every "subprocess"
        "SSH_AUTH_SOCK": str(sock),  # a path that exists names a file; it is not the secret
        "HOME": "/home/someone/long", "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    assert dict(env_secrets(environ)) == {
        OPENAI: "OPENAI_API_KEY", HF: "HF_TOKEN", "w" * 40: "WANDB_API_KEY",
        aws: "AWS_SECRET_ACCESS_KEY", "hunter2hunter2": "MLFLOW_TRACKING_PASSWORD",
    }


def test_values_are_replaced_by_their_names_longest_first():
    r = Redactor(env_secrets({"OPENAI_API_KEY": OPENAI, "PREFIX_TOKEN": OPENAI[:12]}))
    assert r.text(f"key={OPENAI}; again:{OPENAI}.") == "key=[REDACTED:OPENAI_API_KEY]; again:[REDACTED:OPENAI_API_KEY]."
    assert r.text(f"only {OPENAI[:12]}") == "only [REDACTED:PREFIX_TOKEN]"
    assert r.text("nothing secret here") == "nothing secret here"


def test_short_and_common_values_are_not_redacted():
    r = Redactor(env_secrets({"A_TOKEN": "abc", "B_KEY": "1234567", "C_AUTH": "disabled", "D_SECRET": "true"}))
    assert r.names == {}
    text = "abc 1234567 disabled true"
    assert r.text(text) == text


@pytest.mark.parametrize("text, expected", [
    (DB_URL, "https://svc:[REDACTED]@db.example.com/tickets"),
    ("postgresql://admin:s3cr%40t@10.0.0.1:5432/db", "postgresql://admin:[REDACTED]@10.0.0.1:5432/db"),
    ("git clone https://ghp_0123456789abcdefghij@github.com/o/r", "git clone https://[REDACTED]@github.com/o/r"),
    ("GET https://h.test/v1?api_key=abc123&author=me&X-Amz-Signature=f00d#top",
     "GET https://h.test/v1?api_key=[REDACTED]&author=me&X-Amz-Signature=[REDACTED]#top"),
    ("https://h.test/s?keywords=dark+mode&authuser=0&accessToken=t0k", "https://h.test/s?keywords=dark+mode&authuser=0"
                                                                         "&accessToken=[REDACTED]"),
    # no credentials: left as they are
    ("http://localhost:8000/v1 and ssh://git@github.com/o/r", "http://localhost:8000/v1 and ssh://git@github.com/o/r"),
    ("mail me at someone@example.com, see https://host/a@b", "mail me at someone@example.com, see https://host/a@b"),
])
def test_url_credentials_are_redacted(text, expected):
    assert Redactor().text(text) == expected


def test_nested_data_is_copied_with_keys_and_values_redacted():
    r = Redactor(env_secrets({"OPENAI_API_KEY": OPENAI}))
    data = {"a": [1, 2.5, None, True, {"deep": (f"x {OPENAI}", DB_URL)}], f"contains[{OPENAI}]": False}
    got = r.data(data)
    assert got == {"a": [1, 2.5, None, True, {"deep": ("x [REDACTED:OPENAI_API_KEY]",
                                                         "https://svc:[REDACTED]@db.example.com/tickets")}],
                   "contains[[REDACTED:OPENAI_API_KEY]]": False}
    assert OPENAI in json.dumps(data)  # the caller's data is not modified
    clean = {"a": ["nothing", 1]}
    assert r.data(clean) is clean  # nothing to replace: no copy


def test_a_secret_cut_short_next_to_an_ellipsis_is_redacted():
    r = Redactor(env_secrets({"OPENAI_API_KEY": OPENAI}))
    # pytest's repr of a long local keeps its head and tail around "..."; clips use "\u2026"
    assert r.text(f"'key is {OPENAI[:20]}...e', ") == "'key is [REDACTED:OPENAI_API_KEY]...e', "
    assert r.text(f"x...{OPENAI[-9:]} and \u2026{OPENAI[1:]}") == ("x...[REDACTED:OPENAI_API_KEY] and "
                                                                 "\u2026[REDACTED:OPENAI_API_KEY]")
    assert r.text(f"db https://svc:{URL_PASSWORD[:7]}...") == "db https://svc:[REDACTED]..."
    # a few characters are no secret, and text that was not cut is left alone
    assert r.text(f"{OPENAI[:5]}... {OPENAI[:12]}") == f"{OPENAI[:5]}... {OPENAI[:12]}"
    assert r.text("http://localhost:8000... wait...") == "http://localhost:8000... wait..."


def test_a_value_json_would_escape_is_still_found():
    r = Redactor(env_secrets({"DB_PASSWORD": 'pa"ss\\word99'}))
    assert r.data({"x": ['say pa"ss\\word99']}) == {"x": ["say [REDACTED:DB_PASSWORD]"]}


def test_current_follows_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert redaction.redact(f"k {OPENAI}") == f"k {OPENAI}"
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    assert redaction.redact(f"k {OPENAI}") == "k [REDACTED:OPENAI_API_KEY]"


def test_pytest_report_failure_text_xfail_reason_and_captured_output_are_redacted():
    r = Redactor(env_secrets({"HF_TOKEN": HF}))

    class Repr:  # a failure representation object, as pytest's ExceptionChainRepr prints itself
        def __str__(self):
            return f"E   AssertionError: token {HF}"

    report = types.SimpleNamespace(longrepr=Repr(), wasxfail=f"missing {HF}",
                                   sections=[("Captured stdout call", f"print {HF}"), ("Captured log call", "ok")])
    redact_test_report(report, r)
    assert report.longrepr == "E   AssertionError: token [REDACTED:HF_TOKEN]"
    assert report.wasxfail == "missing [REDACTED:HF_TOKEN]"
    assert report.sections == [("Captured stdout call", "print [REDACTED:HF_TOKEN]"), ("Captured log call", "ok")]

    skipped = types.SimpleNamespace(longrepr=("suites/x.py", 3, f"Skipped: {HF}"), sections=[])
    redact_test_report(skipped, r)
    assert skipped.longrepr == ("suites/x.py", 3, "Skipped: [REDACTED:HF_TOKEN]")

    untouched = Repr()
    clean = types.SimpleNamespace(longrepr=untouched, sections=[])
    redact_test_report(clean, Redactor())
    assert clean.longrepr is untouched  # no secret: pytest keeps its own (coloured) representation


# ---- each write boundary on its own ---------------------------------------------------------------

def test_example_records_are_redacted_where_suites_make_them(secret_env):
    rec = results_io.example_record(suite="golden", example_id="g-0", role="candidate",
                                    prompt=[{"role": "user", "content": f"key {OPENAI}"}], output=f"echo {HF}",
                                    passed=False, scores={f"contains[{OPENAI}]": False}, slice={},
                                    reason=f"missing {OPENAI!r}")
    assert leaked(json.dumps(rec)) == []
    assert rec["output"][:200] == "echo [REDACTED:HF_TOKEN]"  # what a suite test's failure message shows


def results_with_secrets() -> dict:
    data = sample_results(n=6)
    ex = data["examples"][0]
    ex["prompt"][1]["content"] = f"my key is {OPENAI}, the db is {DB_URL}"
    ex["output"] = f"Sure, your token {HF}"
    ex["reason"] = f"contains[{OPENAI}]: missing {OPENAI!r}"
    ex["scores"] = {f"contains[{OPENAI}]": False}
    data["verdict"]["line"] = f"tunegate: BLOCKED: could not reach {DB_URL}"
    return data


def test_results_json_is_redacted_and_still_schema_valid(secret_env, tmp_path):
    path = results_io.write(tmp_path / "reports", "20261122-120000-abcd", results_with_secrets())
    text = path.read_text()
    assert leaked(text) == []
    assert "[REDACTED:OPENAI_API_KEY]" in text and "[REDACTED:HF_TOKEN]" in text and "svc:[REDACTED]@" in text
    results_io.validate(json.loads(text))


def test_history_record_and_reports_are_redacted(secret_env, tmp_path, monkeypatch):
    step = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    data = results_with_secrets()
    data["gates"][0]["detail"] = f"failed with {OPENAI}"  # gates are copied into the history row
    history = History(tmp_path / "history.sqlite")
    try:
        history.record(data, tmp_path / "results.json")
        written = write_reports(data, tmp_path / "reports" / data["run_id"], history)
    finally:
        history.close()
    for path in (tmp_path / "history.sqlite", written.html, written.summary, step):
        assert leaked(path.read_bytes().decode("utf-8", "replace")) == [], path
    assert "[REDACTED:OPENAI_API_KEY]" in written.html.read_text()
    assert "[REDACTED" in step.read_text()  # the verdict line heads the summary


# ---- end to end -----------------------------------------------------------------------------------

def secret_golden() -> list[dict]:
    """Golden examples a user pasted secrets into: the first is critical and checks for the key (the tiny
    model never writes it, so pytest prints a failure naming it); the second xfails on the token."""
    rows = golden_rows(ALWAYS)
    rows[0]["messages"][0]["content"] = f"My OpenAI key is {OPENAI} and the db is {DB_URL}. Which category?"
    rows[0]["rubric"] = [{"type": "contains", "value": OPENAI}]
    rows[0]["critical"] = True
    rows[1]["messages"][0]["content"] = f"Log in with token {HF} please"
    rows[1]["rubric"] = [{"type": "contains", "value": HF}]
    return rows


def test_a_run_with_secrets_in_env_and_data_writes_and_prints_none(pytester, tiny_model_dir, repo_root, secret_env,
                                                                    monkeypatch):
    root = make_project(pytester, tiny_model_dir, repo_root, golden=secret_golden())
    step = root / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    junit = root / "junit.xml"
    # -rA: every outcome's reason in the short summary; -v: test ids; -l: locals in tracebacks, where the
    # failing gate's `outcome` holds the raw golden examples and pytest's repr cuts the key in half
    result, out = run(pytester, f"--junitxml={junit}", "-rA", "-l", "-v")
    assert result.ret == 1, out
    assert "critical example failed" in out  # the failure naming the key was printed, redacted
    result.stdout.re_match_lines([r"tunegate: BLOCKED: golden\.critical$"])

    assert leaked(out) == [], out
    inputs = {root / "data" / name for name in ("train.jsonl", "val.jsonl", "golden.jsonl")}
    scanned = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        if path in inputs or path.name.startswith("cache.sqlite"):  # the inputs hold them; the cache holds outputs
            continue
        scanned.append(path.relative_to(root).as_posix())
        assert leaked(path.read_bytes().decode("utf-8", "replace")) == [], path

    run_dir = Path(latest_results(root)["run_id"])  # results.json is schema-valid (latest_results validates)
    for name in (f"reports/{run_dir}/results.json", f"reports/{run_dir}/index.html", f"reports/{run_dir}/summary.md",
                 ".tunegate/history.sqlite", "junit.xml", "step_summary.md"):
        assert name in scanned, (name, scanned)
    results_text = (root / "reports" / "latest" / "results.json").read_text()
    for marker in ("[REDACTED:OPENAI_API_KEY]", "[REDACTED:HF_TOKEN]", "svc:[REDACTED]@db.example.com"):
        assert marker in results_text
    assert "[REDACTED:OPENAI_API_KEY]" in (root / "reports" / "latest" / "index.html").read_text()
    assert "[REDACTED:OPENAI_API_KEY]" in junit.read_text()
    assert "[REDACTED:OPENAI_API_KEY]" in out and "[REDACTED:HF_TOKEN]" in out
