"""The OpenAI-compatible backend over real HTTP on loopback: against `tunegate serve` (the project's engine
behind the API) its answers, samples and log-likelihoods equal the local engine's; against scripted flaky
servers it retries 429 and 5xx with backoff, and gives up in one line."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.config import OpenAIEngine
from harness.engine.local import Engine
from harness.engine.models import load_model
from harness.engine.remote import RemoteEngine, adapter_name
from harness.engine.serve import make_http_server
from harness.errors import TunegateError
from harness.fingerprints import adapter_fingerprint
from harness.roles import BASE
from harness.store.cache import ResultCache
from tests.test_engine import CONVS, _random_adapter

PAIRS = [("The capital of France is", " Paris"), ("The capital of France is", " a city"),
         ("Sync is broken on my", " phone today."), ("Hi", " there")]


def serving(http: ThreadingHTTPServer):
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{http.server_address[1]}/v1"


@pytest.fixture()
def local(tiny_ref, tiny_tokenizer):
    return Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None, batch_size=2)


@pytest.fixture()
def server_url(tiny_ref, tiny_tokenizer):
    """`tunegate serve`'s HTTP server on the tiny model, with the same batch size as `local`."""
    engine = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None, batch_size=2)
    http = make_http_server(engine, "base", "127.0.0.1", 0)
    yield serving(http)
    http.shutdown()
    http.server_close()


def remote(url, tiny_ref, tiny_tokenizer, cache=None, **settings):
    server = OpenAIEngine(base_url=url, model="base", max_retries=0, **settings)
    return RemoteEngine(server, tiny_tokenizer, tiny_ref, cache)


def test_greedy_answers_over_http_equal_the_local_engines(local, server_url, tiny_ref, tiny_tokenizer):
    # All prompts in one request: the server sorts and batches them as the local engine does.
    r = remote(server_url, tiny_ref, tiny_tokenizer, prompts_per_request=64)
    assert r.generate(BASE, CONVS, max_new_tokens=12) == local.generate(BASE, CONVS, max_new_tokens=12)
    assert r.stats.requests == 1 and r.stats.generated == len(CONVS) and r.stats.generated_tokens > 0


def test_chat_api_answers_equal_the_local_engine_one_at_a_time(server_url, tiny_ref, tiny_tokenizer):
    one_at_a_time = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None, batch_size=1)
    r = remote(server_url, tiny_ref, tiny_tokenizer, api="chat", concurrency=3)
    assert r.generate(BASE, CONVS, max_new_tokens=12) == one_at_a_time.generate(BASE, CONVS, max_new_tokens=12)
    assert r.stats.requests == len(CONVS)


def test_seeded_samples_over_http_equal_the_local_engines(local, server_url, tiny_ref, tiny_tokenizer):
    r = remote(server_url, tiny_ref, tiny_tokenizer, concurrency=4)
    kw = dict(k=3, max_new_tokens=8, temperature=0.9, top_p=0.95, seed=7)
    got = r.sample(BASE, CONVS[:3], **kw)
    assert got == local.sample(BASE, CONVS[:3], **kw)
    assert len({s for row in got for s in row}) > 3  # real samples, not one greedy answer repeated


def test_loglikelihoods_over_http_equal_the_local_engines(local, server_url, tiny_ref, tiny_tokenizer):
    r = remote(server_url, tiny_ref, tiny_tokenizer, prompts_per_request=3)
    got, want = r.loglikelihood(BASE, PAIRS), local.loglikelihood(BASE, PAIRS)
    assert [g for _, g in got] == [g for _, g in want]
    assert [v for v, _ in got] == pytest.approx([v for v, _ in want], abs=1e-4)
    assert r.stats.requests == 2  # 4 pairs, 3 to a request


def test_adapters_are_loaded_into_the_server_and_answer_as_locally(local, server_url, tiny_ref, tiny_tokenizer,
                                                                    tmp_path):
    path = _random_adapter(tiny_ref, tmp_path / "a", seed=3)
    fingerprint = adapter_fingerprint(path)
    local.add_adapter("candidate", path, fingerprint)
    r = remote(server_url, tiny_ref, tiny_tokenizer, prompts_per_request=64, load_adapters=True)
    r.add_adapter("candidate", path, fingerprint)
    assert adapter_name(fingerprint) in r._models()
    answers = r.generate("candidate", CONVS, max_new_tokens=12)
    assert answers == local.generate("candidate", CONVS, max_new_tokens=12)
    assert answers != local.generate(BASE, CONVS, max_new_tokens=12)
    # A second engine finds it already served, and does not load it again.
    again = remote(server_url, tiny_ref, tiny_tokenizer, load_adapters=True)
    again.add_adapter("candidate", path, fingerprint)
    assert again.stats.requests == 1  # the model list only


def test_an_adapter_the_server_lacks_is_one_line_naming_it(server_url, tiny_ref, tiny_tokenizer, tmp_path):
    path = _random_adapter(tiny_ref, tmp_path / "a", seed=3)
    r = remote(server_url, tiny_ref, tiny_tokenizer)
    with pytest.raises(TunegateError, match=f"does not serve the candidate adapter as '{adapter_name('f' * 64)}'"
                       ".*--lora-modules.*load_adapters = true"):
        r.add_adapter("candidate", path, "f" * 64)


def test_cached_results_make_no_request(server_url, tiny_ref, tiny_tokenizer, tmp_path):
    cache = ResultCache(tmp_path / "cache.sqlite")
    first = remote(server_url, tiny_ref, tiny_tokenizer, cache)
    answers = first.generate(BASE, CONVS, max_new_tokens=8)
    lls = first.loglikelihood(BASE, PAIRS)
    second = remote(server_url, tiny_ref, tiny_tokenizer, cache)
    assert second.generate(BASE, CONVS, max_new_tokens=8) == answers
    assert second.loglikelihood(BASE, PAIRS) == lls
    assert second.stats.requests == 0 and second.stats.cache_hits == len(CONVS) + len(PAIRS)
    # Another server address is another model: nothing is reused.
    other = RemoteEngine(OpenAIEngine(base_url="http://127.0.0.1:9/v1", model="base", max_retries=0),
                         tiny_tokenizer, tiny_ref, cache)
    with pytest.raises(TunegateError, match=r"engine.openai: cannot reach http://127.0.0.1:9/v1 .* after 0 retries; "
                                            r"start the server, or correct engine.openai.base_url"):
        other.generate(BASE, CONVS[:1], max_new_tokens=8)


class Scripted(BaseHTTPRequestHandler):
    """Answers /v1/completions with the statuses in `script` (one per request; then 200)."""

    script: list[int] = []
    seen: list[int] = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status = self.script[len(self.seen)] if len(self.seen) < len(self.script) else 200
        self.seen.append(status)
        body = {"error": {"message": "slow down", "type": "rate_limit"}} if status != 200 else {
            "id": "x", "object": "text_completion", "created": 0, "model": "base",
            "choices": [{"index": 0, "text": " fine", "logprobs": None, "finish_reason": "stop"}]}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def scripted():
    http = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    Scripted.seen = []
    yield http, serving(http)
    http.shutdown()
    http.server_close()


def test_429_and_5xx_are_retried_with_backoff(scripted, tiny_ref, tiny_tokenizer):
    http, url = scripted
    Scripted.script = [429, 503, 500]
    r = RemoteEngine(OpenAIEngine(base_url=url, model="base", max_retries=3), tiny_tokenizer, tiny_ref, None)
    assert r.generate(BASE, CONVS[:1], max_new_tokens=4) == ["fine"]
    assert Scripted.seen == [429, 503, 500, 200]


def test_a_server_that_keeps_failing_is_one_line(scripted, tiny_ref, tiny_tokenizer):
    http, url = scripted
    Scripted.script = [503] * 10
    r = RemoteEngine(OpenAIEngine(base_url=url, model="base", max_retries=2), tiny_tokenizer, tiny_ref, None)
    with pytest.raises(TunegateError) as e:
        r.generate(BASE, CONVS[:1], max_new_tokens=4)
    assert Scripted.seen == [503, 503, 503]
    assert str(e.value).startswith(f"engine.openai: {url} answered HTTP 503") and "after 2 retries" in str(e.value)
    assert "\n" not in str(e.value)


def test_an_api_key_comes_from_the_named_environment_variable(tiny_ref, tiny_tokenizer, monkeypatch):
    server = OpenAIEngine(base_url="http://127.0.0.1:9/v1", model="base", api_key_env="TG_TEST_API_KEY")
    monkeypatch.delenv("TG_TEST_API_KEY", raising=False)
    with pytest.raises(TunegateError, match="engine.openai.api_key_env: the environment variable TG_TEST_API_KEY "
                                            "is not set"):
        RemoteEngine(server, tiny_tokenizer, tiny_ref, None)
    monkeypatch.setenv("TG_TEST_API_KEY", "sk-test-0123456789")
    assert RemoteEngine(server, tiny_tokenizer, tiny_ref, None).client.api_key == "sk-test-0123456789"


def test_a_model_the_server_does_not_serve_is_one_line(server_url, tiny_ref, tiny_tokenizer):
    r = RemoteEngine(OpenAIEngine(base_url=server_url, model="nope", max_retries=0), tiny_tokenizer, tiny_ref, None)
    with pytest.raises(TunegateError, match=r"answered HTTP 404: .*The model `nope` does not exist; served: base.* "
                                            r"check that it serves the model 'nope' \(engine.openai.model\)"):
        r.generate(BASE, CONVS[:1], max_new_tokens=4)
