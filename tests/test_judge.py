"""LLM-as-judge against a scripted judge server: real HTTP on loopback (stdlib http.server), no mocks.

The answers under judgement are canned (a Run whose generate_all returns fixed texts): what is
tested is the judge suite, not the model. One test runs the real suites end to end on the tiny model.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.config import load_config
from harness.config.schema import DEFAULT_TASK
from harness.errors import TunegateError
from harness.metrics.agreement import calibrate, pair_outcome
from harness.run.evaluation import Evaluator
from harness.run.inputs import RunInputs
from harness.store.history import Grade, History
from harness.suites import judge as judge_suite
from harness.suites.judge.client import Judge, parse_json_object, parse_score, parse_winner

pytest_plugins = ["pytester"]

N = 8  # items: enough for a one-sided sign test on all-lost pairs to be significant (0.5**8 < 0.05)


# ---- the scripted judge server ---------------------------------------------------------------
def _tag(text: str, name: str) -> str | None:
    m = re.search(rf"<{name}>\n(.*?)\n</{name}>", text, flags=re.DOTALL)
    return m.group(1) if m else None


def good(text: str) -> bool:
    return "good" in text


def consistent(prompt: str) -> str:
    """Judges substance: the answer that says 'good' wins; a rubric score of 5 for it, 2 otherwise."""
    a, b = _tag(prompt, "answer_a"), _tag(prompt, "answer_b")
    if a is None:
        return json.dumps({"reasoning": "checked", "score": 5 if good(_tag(prompt, "answer")) else 2})
    winner = "tie" if good(a) == good(b) else ("A" if good(a) else "B")
    return json.dumps({"reasoning": "compared", "winner": winner})


def first_position(prompt: str) -> str:
    """Always prefers the answer shown first."""
    if _tag(prompt, "answer_a") is None:
        return consistent(prompt)
    return json.dumps({"reasoning": "A reads better", "winner": "A"})


def longer(prompt: str) -> str:
    """Always prefers the longer answer, whatever it says."""
    a, b = _tag(prompt, "answer_a"), _tag(prompt, "answer_b")
    if a is None:
        return consistent(prompt)
    return json.dumps({"winner": "tie" if len(a) == len(b) else ("A" if len(a) > len(b) else "B")})


class JudgeServer:
    """POST /v1/chat/completions in the OpenAI format; `policy(user prompt, request body) -> reply text`
    (or an (HTTP status, message) pair for an error). Every request body is kept, to count them."""

    def __init__(self, policy, token: str | None = None):
        self.policy, self.token, self.bodies = policy, token, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                if server.token and self.headers.get("Authorization") != f"Bearer {server.token}":
                    return self._send(401, {"error": {"message": "Incorrect API key provided", "type": "auth"}})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                user = [m["content"] for m in body["messages"] if m["role"] == "user"][0]
                reply = server.policy(user, body)
                if isinstance(reply, tuple):
                    return self._send(reply[0], {"error": {"message": reply[1]}})
                self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    started = []

    def start(policy, **kw):
        started.append(JudgeServer(lambda user, body: policy(user), **kw) if policy.__code__.co_argcount == 1
                       else JudgeServer(policy, **kw))
        return started[-1]

    yield start
    for s in started:
        s.close()


# ---- a project whose answers are canned ------------------------------------------------------
class CannedRun(Evaluator):
    """A real run's view (config, items, workspace, cache, history) whose model answers are fixed texts."""

    def __init__(self, config_path: Path, answers: dict[str, list[str]]):
        super().__init__(RunInputs(config_path), engine=lambda: None, has_champion=lambda: "champion" in answers)
        self.answers = answers

    def generate(self, prompts, max_new_tokens, *, roles=None):
        assert all(len(a) == len(prompts) for a in self.answers.values())
        return self.answers

    @property
    def suite_metrics(self) -> dict:
        return self.metrics()


def project(tmp_path: Path, url: str, extra: str = "", server_extra: str = "") -> Path:
    rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": f"Question {i}?"}], "reference": f"Ref {i}",
             "rubric": [{"type": "contains", "value": "x"}], "slice": {"task": "qa"}} for i in range(N)]
    (tmp_path / "golden.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tunegate.toml").write_text(f"""
[suites.golden]
path = "golden.jsonl"
[suites.judge]
enabled = true
min_human_grades = 6
{extra}
[suites.judge.server]
base_url = "{url}"
model = "judge-model"
max_retries = 0
{server_extra}
""")
    return tmp_path / "tunegate.toml"


def evaluate(config: Path, **answers: list[str]):
    run = CannedRun(config, answers)
    return run, run.evaluation("judge").outcome


GOOD = [f"A good answer {i}" for i in range(N)]
BAD = [f"A bad answer {i}, long and padded with words" for i in range(N)]


# ---- (1) order bias ---------------------------------------------------------------------------
def test_position_biased_judge_turns_every_comparison_into_a_tie(tmp_path, serve):
    server = serve(first_position)
    run, out = evaluate(project(tmp_path, server.url), base=BAD, candidate=GOOD, champion=BAD)
    vs = run.suite_metrics["judge"]["candidate"]["vs_champion"]
    assert (vs["wins"], vs["losses"], vs["inconsistent"]) == (0, 0, N)
    assert vs["consistency_rate"] == 0.0 and vs["first_position_rate"] == 1.0 and vs["net_win_rate"] == 0.0
    assert {r["scores"]["vs_base"] for r in out.records["candidate"].values()} == {"inconsistent"}
    gate = judge_suite.pairwise_gate("judge.pairwise_champion", out.pairs["champion"], "champion", 0.1, 0.05)
    assert gate.passed is True and "0 won / 0 lost" in gate.detail  # no false win, no false loss


def test_consistent_judge_agrees_across_orders_and_finds_the_winner(tmp_path, serve):
    server = serve(consistent)
    run, out = evaluate(project(tmp_path, server.url), base=BAD, candidate=GOOD, champion=GOOD[:4] + BAD[4:])
    m = run.suite_metrics["judge"]["candidate"]
    assert m["vs_base"]["consistency_rate"] == 1.0 and m["vs_base"]["wins"] == N and m["vs_base"]["losses"] == 0
    assert m["vs_champion"]["identical"] == 4 and m["vs_champion"]["wins"] == 4  # identical answers: no request
    # One request per distinct payload: rubric 2N (the champion's answers are the others'), pairwise 2 orders
    # of the N base pairs (the champion's 4 differing pairs are the same texts, the other 4 are identical).
    assert len(server.bodies) == 2 * N + 2 * N
    assert m["pass_rate"] == 1.0 and run.suite_metrics["judge"]["base"]["pass_rate"] == 0.0
    # The other way round the candidate loses in both orders, on every item: a significant loss.
    run, out = evaluate(project(tmp_path, server.url), base=GOOD, candidate=BAD, champion=GOOD)
    gate = judge_suite.pairwise_gate("judge.pairwise_base", out.pairs["base"], "base", 0.1, 0.05)
    assert gate.passed is False and gate.value == -1.0 and gate.p_value < 0.05


def test_length_biased_judge_shows_in_the_length_difference(tmp_path, serve):
    server = serve(longer)
    run, _ = evaluate(project(tmp_path, server.url), base=GOOD, candidate=BAD)
    vs = run.suite_metrics["judge"]["candidate"]["vs_base"]
    gap = len(BAD[0]) - len(GOOD[0])
    # The judge prefers the padded, wrong answer in both orders: consistent, but for its length.
    assert vs["wins"] == N and vs["consistency_rate"] == 1.0
    assert vs["length_diff_preferred"] == gap and vs["length_diff_candidate"] == gap


# ---- (2) parsing, with one retry --------------------------------------------------------------
def test_unparseable_reply_is_retried_once_with_what_was_wrong(tmp_path, serve):
    def policy(user, body):
        if "could not be used" in body["messages"][-1]["content"]:
            return 'Sure! ```json\n{"Reasoning": "fine", "score": "4/5"}\n```'
        return "I think this answer is quite good."

    server = serve(policy)
    run, out = evaluate(project(tmp_path, server.url, "pairwise = false"), base=GOOD, candidate=GOOD)
    rec = out.records["candidate"]["q0"]
    assert rec["passed"] is True and rec["scores"] == {"judge_score": 4.0, "parsed": True, "attempts": 2}
    retry = next(b for b in server.bodies if len(b["messages"]) == 4)  # system, user, reply, follow-up
    assert all(b["response_format"] == {"type": "json_object"} for b in server.bodies)
    assert retry["messages"][-2] == {"role": "assistant", "content": "I think this answer is quite good."}
    assert "the reply holds no JSON object" in retry["messages"][-1]["content"]
    assert len(server.bodies) == 2 * N  # the candidate's answers equal base's: judged once each


def test_two_failures_are_unparsed_never_a_pass(tmp_path, serve):
    server = serve(lambda user: '{"score": 9}')
    run, out = evaluate(project(tmp_path, server.url, "pairwise = false"), base=GOOD, candidate=GOOD)
    rec = out.records["candidate"]["q0"]
    assert rec["passed"] is False and rec["scores"]["parsed"] is False and rec["scores"]["judge_score"] is None
    assert "unparsed after a retry: 'score' 9 is outside 1-5" in rec["reason"]
    assert run.suite_metrics["judge"]["candidate"]["unparsed"] == N
    assert run.suite_metrics["judge"]["candidate"]["pass_rate"] == 0.0


def test_tolerant_parser():
    assert parse_json_object('Here you go:\n{"score": 3, "reasoning": "a {b}"} thanks') == {"score": 3,
                                                                                         "reasoning": "a {b}"}
    assert parse_score({"score": "4 out of 5"}, 5) == 4.0 and parse_score({"score": 2.5}, 5) == 2.5
    assert [parse_winner({"winner": w}) for w in ("Answer A", "b", "Draw", '"A".')] == ["A", "B", "tie", "A"]
    for text, why in (("", "empty"), ("no json", "no JSON object"), ('[1, 2]', "no JSON object")):
        with pytest.raises(ValueError, match=why):
            parse_json_object(text)
    with pytest.raises(ValueError, match="not a number"):
        parse_score({"score": True}, 5)
    assert [pair_outcome(*o) for o in (("A", "B"), ("B", "A"), ("A", "A"), ("tie", "tie"), (None, "A"))] == [
        "win", "loss", "inconsistent", "tie", "unparsed"]


# ---- (3) caching ------------------------------------------------------------------------------
def test_second_evaluation_asks_the_judge_nothing(tmp_path, serve):
    server = serve(consistent)
    config = project(tmp_path, server.url)
    run, _ = evaluate(config, base=BAD, candidate=GOOD)
    sent = len(server.bodies)
    assert sent == 2 * N + 2 * N and run.suite_metrics["judge"]["candidate"]["judge"]["requests"] == sent
    run, _ = evaluate(config, base=BAD, candidate=GOOD)
    assert len(server.bodies) == sent  # zero new HTTP requests
    assert run.suite_metrics["judge"]["candidate"]["judge"]["cached"] == sent
    # A changed rubric is a different request: asked again.
    evaluate(project(tmp_path, server.url, 'criteria = "Be terse."'), base=BAD, candidate=GOOD)
    assert len(server.bodies) == 2 * sent


# ---- (4) calibration --------------------------------------------------------------------------
def human_grades(workspace: Path, answers: list[str], grades: list[bool]) -> None:
    """A past run in the history with golden outputs `answers`, graded by a person as `grades`."""
    run_id = "20240101-000000-abcd"
    records = [{"suite": "golden", "example_id": f"q{i}", "role": "candidate",
                "prompt": [{"role": "user", "content": f"Question {i}?"}], "output": a, "passed": True,
                "scores": {}, "slice": {}, "critical": False, "critical_failed": False, "reason": ""}
               for i, a in enumerate(answers)]
    results = {"run_id": run_id, "started_at": "2024-01-01T00:00:00+00:00", "finished_at": "2024-01-01T00:01:00+00:00",
               "git_commit": None, "config_hash": "h", "data": {}, "complete": True, "candidate": None,
               "champion": None, "suites": {}, "gates": [], "examples": records,
               "verdict": {"status": "NOT PROMOTED", "line": "", "failed_gates": []}}
    path = workspace / "reports" / run_id / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(results))
    history = History.in_workspace(workspace, DEFAULT_TASK)  # the project's task (it names none)
    history.record(results, path)
    history.add_grades([Grade(run_id, "golden", f"q{i}", "candidate", "ana", g) for i, g in enumerate(grades)], "t")
    history.close()


def test_calibration_decides_whether_the_judge_gates(tmp_path, serve):
    server = serve(consistent)
    config = project(tmp_path, server.url)
    graded = GOOD[:4] + BAD[:4]  # the judge passes the first four, fails the rest
    (tmp_path / ".tunegate").mkdir()
    # No grades yet: reported, not gating.
    run, out = evaluate(config, base=GOOD, candidate=BAD)
    result = run.gate("judge", "pass_rate")
    assert result.passed is None and result.detail.startswith(
        "judge not calibrated: 0 human grades, fewer than suites.judge.min_human_grades 6")
    assert "would fail: judged pass rate 0.000" in result.detail
    # People disagree with the judge on 3 of 8 outputs: kappa 0.25 < 0.6, still not gating.
    human_grades(tmp_path / ".tunegate", graded, [True, True, False, False, False, False, True, False])
    run, out = evaluate(config, base=GOOD, candidate=BAD)
    cal = run.suite_metrics["judge"]["candidate"]["judge"]
    assert (cal["kappa"], cal["human_grades"], cal["gating"]) == (0.25, 8, False)
    gates = {name: run.gate("judge", name) for name in judge_suite.JudgeSuite.gates}
    assert all(g.passed is None for g in gates.values())
    assert gates["noninferior_base"].detail.startswith("judge not calibrated: kappa 0.25 < 0.6 on 8 human grades")


def test_calibrated_judge_gates(tmp_path, serve):
    server = serve(consistent)
    config = project(tmp_path, server.url)
    (tmp_path / ".tunegate").mkdir()
    human_grades(tmp_path / ".tunegate", GOOD[:4] + BAD[:4], [True] * 4 + [False] * 4)  # kappa 1
    run, out = evaluate(config, base=GOOD, candidate=BAD)
    assert out.calibration.gating and out.calibration.kappa == 1.0
    gates = {name: run.gate("judge", name) for name in judge_suite.JudgeSuite.gates}
    assert gates["pass_rate"].passed is False and gates["noninferior_base"].passed is False
    assert gates["pairwise_base"].passed is False and gates["pairwise_champion"].passed is None  # no champion
    run, out = evaluate(config, base=BAD, candidate=GOOD)
    assert all(run.gate("judge", n).passed for n in ("pass_rate", "noninferior_base", "pairwise_base"))


def test_kappa():
    assert calibrate([True, False] * 5, [True, False] * 5, min_kappa=0.6, min_grades=10).gating
    low = calibrate([True, True, False, False], [True, False, True, False], min_kappa=0.6, min_grades=1)
    assert low.kappa == 0.0 and low.reason == "judge not calibrated: kappa 0.00 < 0.6 on 4 human grades"
    assert calibrate([True] * 3, [True] * 3, min_kappa=0.6, min_grades=1).kappa is None  # undefined: one label


# ---- (5) errors -------------------------------------------------------------------------------
def judge_for(tmp_path, url: str, server_extra: str = "") -> Judge:
    return Judge(load_config(project(tmp_path, url, server_extra=server_extra)).suites.judge)


def test_unreachable_server_is_one_clear_line(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = judge_for(tmp_path, f"http://127.0.0.1:{port}/v1")
    with pytest.raises(TunegateError) as err:
        judge.grade([judge.rubric_messages([{"role": "user", "content": "q"}], None, "a")] * 3)
    message = str(err.value)
    assert message.startswith(f"suites.judge.server: cannot reach http://127.0.0.1:{port}/v1") and "\n" not in message
    assert message.endswith("start the server, or correct suites.judge.server.base_url")


def test_http_401_names_the_api_key_setting(tmp_path, serve, monkeypatch):
    server = serve(consistent, token="right-key")
    monkeypatch.setenv("JUDGE_KEY", "wrong-key")
    judge = judge_for(tmp_path, server.url, 'api_key_env = "JUDGE_KEY"')
    with pytest.raises(TunegateError) as err:
        judge.grade([judge.rubric_messages([{"role": "user", "content": "q"}], None, "a")])
    message = str(err.value)
    assert "answered HTTP 401" in message and message.endswith("check suites.judge.server.api_key_env")
    assert "\n" not in message and "wrong-key" not in message
    monkeypatch.setenv("JUDGE_KEY", "right-key")
    judge = judge_for(tmp_path, server.url, 'api_key_env = "JUDGE_KEY"')
    assert judge.grade([judge.rubric_messages([{"role": "user", "content": "q"}], None, "a good one")])[0].value == 5


def test_config_errors(tmp_path):
    (tmp_path / "tunegate.toml").write_text("[suites.judge]\nenabled = true\n")
    with pytest.raises(TunegateError, match=r"key 'suites.judge': Value error, an enabled judge needs a "
                                            r"\[suites.judge.server\] table"):
        load_config(tmp_path / "tunegate.toml")
    with pytest.raises(TunegateError, match="rubric_template lacks the placeholder {answer}"):
        load_config(project(tmp_path, "http://x/v1", 'rubric_template = "Grade it."'))
    assert load_config(project(tmp_path, "http://x/v1")).suites.judge.min_kappa == 0.6


# ---- end to end -------------------------------------------------------------------------------
def test_suites_end_to_end_with_the_judge(pytester, tiny_model_dir, repo_root, serve):
    """`pytest suites/` on the tiny model with the judge on: its records, metrics and gates reach results.json
    and the report; uncalibrated, it does not block."""
    from tests.test_e2e_suites import GOLDEN_ONLY, latest_results, make_project, run

    server = serve(consistent)
    judge = (f'[suites.judge]\nenabled = true\n[suites.judge.server]\nbase_url = "{server.url}"\nmodel = "j"\n'
             'max_retries = 0\n')
    root = make_project(pytester, tiny_model_dir, repo_root, extra_config=GOLDEN_ONLY + judge)
    result, out = run(pytester, "-rs")
    assert result.ret == 0, out
    result.stdout.re_match_lines([r"tunegate: PROMOTED sft-[0-9a-f]{12}$"])
    # golden: 5 examples + 3 gates pass, its champion gate n/a; judge: the tiny model's answers never say
    # "good", so the judge fails all 5 (xfail), and its 5 gates are skipped: no human grades yet.
    result.assert_outcomes(passed=5 + 3, skipped=1 + 5, xfailed=5)
    assert "judge not calibrated: 0 human grades" in out
    results = latest_results(root)
    cand = results["suites"]["judge"]["candidate"]
    assert cand["pass_rate"] == 0.0 and cand["judge"]["gating"] is False and cand["vs_base"]["n"] == 5
    gates = {g["name"]: g for g in results["gates"] if g["suite"] == "judge"}
    assert set(gates) == {f"judge.{g}" for g in judge_suite.JudgeSuite.gates} and all(g["passed"] is None for g in gates.values())
    assert sum(r["suite"] == "judge" for r in results["examples"]) == 2 * 5
    html = (root / "reports" / "latest" / "index.html").read_text()
    assert "vs_base.consistency_rate" in html and "judge.pass_rate" in html
    # 3 roles' rubric grades, one request per distinct answer; the tiny adapter answers as base does, so the
    # pairs are identical texts, tied without asking.
    assert 0 < len(server.bodies) == cand["judge"]["requests"] <= 3 * 5 and cand["vs_base"]["identical"] == 5
