"""`tunegate serve`: the project's own engine behind an OpenAI-compatible API (/v1/models, /v1/completions
with echo + logprobs, /v1/chat/completions, vLLM's /v1/load_lora_adapter), so that teams can put the base
model and its adapters on one shared machine and evaluate from anywhere with `engine.backend = "openai"`.

One engine, one model in memory: requests are served one at a time (the engine batches the prompts of a
request). Greedy answers equal the local engine's for the same prompts batched alike; a seeded sample
equals the local engine's sample with that row seed.
"""
from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from harness.engine.adapter_check import check_adapter
from harness.engine.local import Engine, budget_rows
from harness.engine.models import load_model, load_tokenizer, resolve_base
from harness.errors import TunegateError
from harness.fingerprints import adapter_fingerprint
from harness.roles import BASE


class BadRequest(Exception):
    """A request the API rejects with HTTP 400 (or `status`), with the message the client sees."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


def prompt_logprobs(engine: Engine, role: str, rows: list[list[int]]) -> list[dict]:
    """For each prompt (token ids): every token's log-probability given the tokens before it (None for the
    first), the top-1 alternative at each position, and the greedy next token, in the shape of the
    /completions `logprobs` object (with echo)."""
    tok = engine.tokenizer
    out: list[dict] = [{}] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    start = 0
    with engine.using(role):
        while start < len(order):
            width = len(rows[order[start]])
            idx = order[start:start + budget_rows(width, engine.batch_size, engine.max_batch_tokens)]
            start += len(idx)
            # Right padding: positions count from 0 in every row, as they do for a row alone.
            ids = torch.full((len(idx), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for n, i in enumerate(idx):
                ids[n, :len(rows[i])] = torch.tensor(rows[i])
                mask[n, :len(rows[i])] = 1
            logprobs = torch.log_softmax(engine.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for n, i in enumerate(idx):
                length = len(rows[i])
                lp = logprobs[n, :length]
                taken = lp[:-1].gather(1, ids[n, 1:length, None])[:, 0].tolist()
                top_lp, top_id = lp.max(-1)
                out[i] = {
                    "tokens": [tok.decode([t]) for t in rows[i]],
                    "token_logprobs": [None, *taken],
                    "top_logprobs": [None, *({tok.decode([int(t)]): float(v)}
                                             for t, v in zip(top_id[:-1], top_lp[:-1]))],
                    "next": (int(top_id[-1]), float(top_lp[-1])),
                }
    return out


class Server:
    """The API's logic, apart from HTTP: a request body in, a response body out."""

    def __init__(self, engine: Engine, served_name: str):
        self.engine = engine
        self.names = {served_name: BASE}  # served model name -> engine role
        self.lock = threading.Lock()  # one model: one computation at a time

    def role(self, body: dict) -> str:
        name = body.get("model")
        if name not in self.names:
            raise BadRequest(f"The model `{name}` does not exist; served: {', '.join(self.names)}",
                             HTTPStatus.NOT_FOUND)
        return self.names[name]

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "tunegate"} for n in self.names]}

    def load_adapter(self, body: dict) -> str:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            raise BadRequest("lora_name and lora_path are required")
        if name in self.names:
            raise BadRequest(f"The lora adapter '{name}' has already been loaded.")
        path = Path(path)
        try:
            check_adapter(path, None)
            fingerprint = adapter_fingerprint(path)
        except (TunegateError, OSError) as e:
            raise BadRequest(f"cannot load adapter {path}: {e}") from None
        with self.lock:
            self.engine.add_adapter(name, path, fingerprint)
        self.names[name] = name
        return f"Success: LoRA adapter '{name}' added successfully."

    def _answers(self, role: str, prompts: list[str], body: dict) -> tuple[list[str], int]:
        """Answers and the generated token count: greedy at temperature 0, else each row sampled with the
        request's seed (OpenAI's default temperature is 1)."""
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        with self.lock:
            before = self.engine.stats.generated_tokens
            if temperature == 0:
                texts = self.engine.complete(role, prompts, max_tokens)
            else:  # every row with the request's seed, or a fresh one: OpenAI's sampling is unseeded by default
                seed = int(body["seed"]) if body.get("seed") is not None else secrets.randbits(32)
                texts = self.engine.complete(role, prompts, max_tokens, [seed] * len(prompts), temperature,
                                             float(body.get("top_p") or 1.0))
            return texts, self.engine.stats.generated_tokens - before

    def completions(self, body: dict) -> dict:
        role = self.role(body)
        prompt = body.get("prompt")
        # The API's four prompt shapes: a string, strings, token ids, lists of token ids.
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
            prompt = [prompt]
        if not isinstance(prompt, list) or not prompt:
            raise BadRequest("prompt must be a string, a list of strings, token ids or lists of token ids")
        tok = self.engine.tokenizer
        rows = [tok(p, add_special_tokens=False)["input_ids"] if isinstance(p, str) else list(p) for p in prompt]
        texts = [p if isinstance(p, str) else tok.decode(p) for p in prompt]
        if body.get("echo") and body.get("logprobs") is not None:
            if any(len(r) < 1 for r in rows):
                raise BadRequest("empty prompt")
            with self.lock:
                scored = prompt_logprobs(self.engine, role, rows)
            choices = []
            for i, s in enumerate(scored):
                nxt, nxt_lp = s.pop("next")
                piece = tok.decode([nxt])
                s["tokens"].append(piece)
                s["token_logprobs"].append(nxt_lp)
                s["top_logprobs"].append({piece: nxt_lp})
                choices.append({"index": i, "text": texts[i] + piece, "logprobs": s, "finish_reason": "length"})
            generated = len(rows)
        else:
            answers, generated = self._answers(role, texts, body)
            choices = [{"index": i, "text": a, "logprobs": None, "finish_reason": "stop"} for i, a in enumerate(answers)]
        return self._response("text_completion", body, choices, sum(map(len, rows)), generated)

    def chat(self, body: dict) -> dict:
        role = self.role(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list")
        prompt = self.engine.render([{"role": m["role"], "content": m["content"]} for m in messages])
        answers, generated = self._answers(role, [prompt], body)
        choices = [{"index": 0, "message": {"role": "assistant", "content": answers[0]}, "finish_reason": "stop",
                    "logprobs": None}]
        n_prompt = len(self.engine.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return self._response("chat.completion", body, choices, n_prompt, generated)

    @staticmethod
    def _response(kind: str, body: dict, choices: list, prompt_tokens: int, completion_tokens: int) -> dict:
        return {"id": f"tg-{time.time_ns()}", "object": kind, "created": int(time.time()), "model": body["model"],
                "choices": choices, "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                              "total_tokens": prompt_tokens + completion_tokens}}


def handler_for(server: Server) -> type[BaseHTTPRequestHandler]:
    routes = {"/v1/completions": server.completions, "/v1/chat/completions": server.chat,
              "/v1/load_lora_adapter": server.load_adapter}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the openai client reuses connections

        def _send(self, status: int, payload) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path in ("/health", "/v1/health"):
                self._send(200, "ok")
            elif self.path == "/v1/models":
                self._send(200, server.models())
            else:
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found", "code": 404}})

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                route = routes.get(self.path)
                if route is None:
                    raise BadRequest(f"no route {self.path}", HTTPStatus.NOT_FOUND)
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                self._send(200, route(body))
            except BadRequest as e:
                self._send(e.status, {"error": {"message": str(e), "type": "invalid_request_error",
                                                "code": int(e.status)}})
            except (json.JSONDecodeError, ValueError, TypeError, KeyError) as e:
                self._send(400, {"error": {"message": f"bad request: {e}", "type": "invalid_request_error",
                                           "code": 400}})

        def log_message(self, format: str, *args) -> None:  # one short line a request, on stderr
            print(f"tunegate serve: {self.command} {self.path} {args[1] if len(args) > 1 else ''}",
                  file=sys.stderr, flush=True)

    Handler.api = server
    return Handler


def make_http_server(engine: Engine, served_name: str, host: str, port: int) -> ThreadingHTTPServer:
    """The HTTP server (not yet serving); port 0 picks a free one (`server_address[1]`)."""
    return ThreadingHTTPServer((host, port), handler_for(Server(engine, served_name)))


def build_engine(config, dtype: str | None = None) -> Engine:
    """The config's base model, in `dtype` (default model.dtype), as an engine with no cache: a server
    answers whatever it is asked."""

    m, e = config.model, config.engine
    base = resolve_base(m.base, config.path(config.workspace.dir), m.revision, m.allow_pickle)
    model = load_model(base, dtype or m.dtype, m.trust_remote_code)
    return Engine(model, load_tokenizer(base, m.trust_remote_code), base, None, e.batch_size, e.max_batch_tokens)


def serve(config, host: str, port: int, served_name: str, adapters: list[str], dtype: str | None = None) -> None:
    """Serve until interrupted. `adapters` are NAME=PATH pairs, loaded before the first request."""
    engine = build_engine(config, dtype)
    http = make_http_server(engine, served_name, host, port)
    api: Server = http.RequestHandlerClass.api
    for spec in adapters:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise TunegateError(f"--lora-module {spec!r}: expected NAME=PATH")
        try:
            api.load_adapter({"lora_name": name, "lora_path": path})
        except BadRequest as e:
            raise TunegateError(f"--lora-module {spec}: {e}") from None
    print(f"tunegate serve: http://{host}:{http.server_address[1]}/v1 serving {', '.join(api.names)}", flush=True)
    try:
        http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        http.server_close()
