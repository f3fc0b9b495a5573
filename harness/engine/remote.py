"""The evaluation engine for a model served behind an OpenAI-compatible API (vLLM serve, TGI, a llama.cpp
server, `tunegate serve`): the local engine's interface (generate, sample, loglikelihood per role), over
HTTP through the `openai` client, behind the same content-keyed cache.

Roles are served model names: the base is `engine.openai.model`; an adapter is served as `adapter_name()`
of its fingerprint, loaded into the server at run time when `load_adapters` is on.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from harness.engine.local import EngineStats, through_cache
from harness.engine.models import BaseModelRef
from harness.engine.openai_client import describe_error, make_client, run_all
from harness.errors import TunegateError
from harness.roles import BASE
from harness.store.cache import ResultCache, cache_key

if TYPE_CHECKING:  # the config sits above the engines; only its type is needed here
    from harness.config import OpenAIEngine

KEY = "engine.openai"


def adapter_name(fingerprint: str) -> str:
    """The name an adapter is served under: content-addressed, so a server may keep adapters loaded
    across runs and a changed adapter never answers for the old one."""
    return f"tunegate-{fingerprint[:16]}"


def sample_seeds(prompt: str, k: int, seed: int) -> list[int]:
    """The seeds of a prompt's `k` samples: the local engine's, so a deterministic server that honours
    `seed` (tunegate serve) returns the local engine's samples."""
    base = int(hashlib.sha256(f"{seed}:{prompt}".encode()).hexdigest()[:15], 16)
    return [base + j for j in range(k)]


def scoring_rows(tokenizer, pairs: list) -> list[tuple[list[int], int]]:
    """For each (context, continuation): the token ids of the whole text and where the continuation
    starts. As the local engine and lm-evaluation-harness do, the whole text is tokenized and the
    continuation is what follows the context's own tokens (at least one token)."""
    rows = []
    for context, continuation in pairs:
        whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
        n_ctx = len(tokenizer(context, add_special_tokens=False)["input_ids"])
        rows.append((whole, min(len(whole) - 1, max(1, n_ctx))))
    return rows


class RemoteEngine:
    """The engine interface over an OpenAI-compatible server. `tokenizer` is the base model's: it renders
    prompts for /completions and splits a log-likelihood's context from its continuation."""

    def __init__(self, server: OpenAIEngine, tokenizer, base: BaseModelRef, cache: ResultCache | None):
        self.server = server
        self.tokenizer = tokenizer
        self.base = base
        self.cache = cache
        self.client = make_client(server, KEY)
        self.adapters: dict[str, str] = {}  # role -> adapter fingerprint
        self._served: dict[str, str] = {BASE: server.model}  # role -> served model name
        self.stats = EngineStats()

    # ---- roles ----------------------------------------------------------------------------
    def add_adapter(self, role: str, path: Path, fingerprint: str) -> None:
        """Have the server answer for `role` with this adapter: load it there (load_adapters), else check
        that it is already served."""
        if role == BASE or role in self.adapters:
            raise ValueError(f"role {role!r} is already loaded")
        name = adapter_name(fingerprint)
        if name not in self._models():
            if not self.server.load_adapters:
                raise TunegateError(
                    f"{KEY}: {self.server.base_url} does not serve the {role} adapter as '{name}'; start the server "
                    f"with it (vLLM: --enable-lora --lora-modules {name}={Path(path).resolve()}), or set "
                    f"{KEY}.load_adapters = true to load it at run time")
            self._request(lambda: self.client.post(
                "/load_lora_adapter", body={"lora_name": name, "lora_path": str(Path(path).resolve())}, cast_to=str))
        self.adapters[role] = fingerprint
        self._served[role] = name

    def _models(self) -> set[str]:
        return {m.id for m in self._request(lambda: list(self.client.models.list()))}

    def _request(self, call):
        import openai

        self.stats.requests += 1
        try:
            return call()
        except openai.OpenAIError as error:
            raise describe_error(error, self.server, KEY) from None

    def _key(self, role: str, kind: str, payload: object, settings: dict) -> str:
        # What answers is the server's model: its address and name stand where the local engine has the
        # weights' fingerprint and dtype. The base's fingerprint stays: it is the tokenizer and template.
        return cache_key(kind=kind, model=self.base.fingerprint, server=self.server.base_url,
                         served=self.server.model, api=self.server.api, adapter=self.adapters.get(role),
                         payload=payload, settings=settings)

    def _cached(self, role: str, kind: str, payloads: list, settings: dict, compute) -> list:
        if role != BASE and role not in self.adapters:
            raise KeyError(f"no adapter loaded for role {role!r}")
        keys = [self._key(role, kind, p, settings) for p in payloads]
        return through_cache(self.cache, self.stats, role, keys, payloads, compute)

    # ---- generation -----------------------------------------------------------------------
    def render(self, conversation: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def _payloads(self, conversations: list[list[dict[str, str]]]) -> list:
        return [self.render(c) for c in conversations] if self.server.api == "completions" else conversations

    def generate(self, role: str, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        """Greedy answers (temperature 0) for each conversation, as `role`. Cached by content."""
        settings = {"max_new_tokens": max_new_tokens, "decoding": "greedy"}
        return self._cached(role, "generate", self._payloads(conversations), settings,
                            lambda todo: self._complete(role, todo, max_new_tokens, {"temperature": 0.0}))

    def sample(self, role: str, conversations: list[list[dict[str, str]]], k: int, max_new_tokens: int, *,
               temperature: float, top_p: float, seed: int) -> list[list[str]]:
        """`k` sampled answers per conversation, each request with its own seed (a server that ignores
        `seed` still samples, only not reproducibly)."""
        settings = {"k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                    "seed": seed, "decoding": "sample"}

        def compute(todo: list) -> list[list[str]]:
            jobs = [(p, s) for p in todo for s in sample_seeds(str(p), k, seed)]
            texts = run_all(lambda job: self._complete(role, [job[0]], max_new_tokens, {
                "temperature": temperature, "top_p": top_p, "seed": job[1]})[0], jobs, self.server.concurrency)
            return [texts[i * k:(i + 1) * k] for i in range(len(todo))]

        return self._cached(role, "sample", self._payloads(conversations), settings, compute)

    def _complete(self, role: str, payloads: list, max_new_tokens: int, decoding: dict) -> list[str]:
        """One answer per payload: prompts go to /completions several to a request, conversations to
        /chat/completions one a request; requests run `concurrency` at a time."""
        model = self._served[role]
        if self.server.api == "chat":
            def one(chunk):
                r = self._request(lambda: self.client.chat.completions.create(
                    model=model, messages=chunk[0], max_tokens=max_new_tokens, **decoding))
                self._count(r)
                return [(r.choices[0].message.content or "").strip()]
            chunks = [[m] for m in payloads]
        else:
            def one(prompts):
                r = self._request(lambda: self.client.completions.create(
                    model=model, prompt=prompts, max_tokens=max_new_tokens, **decoding))
                self._count(r)
                return [c.text.strip() for c in sorted(r.choices, key=lambda c: c.index)]
            n = self.server.prompts_per_request
            chunks = [payloads[i:i + n] for i in range(0, len(payloads), n)]
        out = [text for part in run_all(one, chunks, self.server.concurrency) for text in part]
        self.stats.generated += len(out)
        return out

    def _count(self, response) -> None:
        usage = getattr(response, "usage", None)
        self.stats.generated_tokens += getattr(usage, "completion_tokens", 0) or 0

    # ---- log-likelihood -------------------------------------------------------------------
    def loglikelihood(self, role: str, pairs: list[tuple[str, str]], dtype: str | None = None
                      ) -> list[tuple[float, bool]]:
        """For each (context, continuation): the continuation's summed log-probability and whether it is
        the greedy one, from the server's prompt log-probabilities (/completions with echo, as
        lm-evaluation-harness asks for them). `dtype` is the server's to choose, so it is ignored."""
        if self.server.api != "completions" or not self.server.logprobs:
            raise TunegateError(f"{KEY}: log-likelihoods need api = 'completions' and logprobs = true; the suites "
                                "scored by them should have been skipped")
        values = self._cached(role, "loglikelihood", [list(p) for p in pairs], {},
                              lambda todo: self._loglikelihood(role, todo))
        return [(float(v[0]), bool(v[1])) for v in values]

    def _loglikelihood(self, role: str, pairs: list[list[str]]) -> list[list]:
        rows = scoring_rows(self.tokenizer, pairs)
        n = self.server.prompts_per_request
        chunks = [rows[i:i + n] for i in range(0, len(rows), n)]
        model = self._served[role]

        def one(chunk):
            # max_tokens=1: servers differ on 0; the one generated token is past the slice read below.
            r = self._request(lambda: self.client.completions.create(
                model=model, prompt=[ids for ids, _ in chunk], max_tokens=1, temperature=0.0, logprobs=1, echo=True))
            out = []
            for (ids, start), choice in zip(chunk, sorted(r.choices, key=lambda c: c.index)):
                lp = choice.logprobs
                if lp is None or not lp.token_logprobs or len(lp.token_logprobs) < len(ids):
                    raise TunegateError(f"{KEY}: {self.server.base_url} returned no prompt log-probabilities "
                                        f"(echo + logprobs); set {KEY}.logprobs = false to skip the suites that "
                                        "need them")
                tokens = lp.token_logprobs[start:len(ids)]
                tops = lp.top_logprobs[start:len(ids)]
                greedy = all(t >= max(top.values()) for t, top in zip(tokens, tops))
                out.append([float(sum(tokens)), bool(greedy)])
            return out

        out = [v for part in run_all(one, chunks, self.server.concurrency) for v in part]
        self.stats.scored += len(out)
        return out
