"""The `openai` client for an OpenAI-compatible server named in the config (the remote engine, the judge),
and running many requests at once on it."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

from harness.errors import TunegateError
from harness.settings import OpenAIServer

T = TypeVar("T")
R = TypeVar("R")


def make_client(server: OpenAIServer, key: str):
    """An `openai.OpenAI` client for `server`; `key` names the config table, for error messages. The API key
    comes from the environment variable `server.api_key_env`: servers without authentication (a local vLLM,
    `tunegate serve`) accept any, so none configured sends a placeholder."""
    import openai

    api_key = "unused"
    if server.api_key_env is not None:
        api_key = os.environ.get(server.api_key_env, "")
        if not api_key:
            raise TunegateError(f"{key}.api_key_env: the environment variable {server.api_key_env} is not set; "
                                "export the API key in it, or remove api_key_env for a server without one")
    return openai.OpenAI(base_url=server.base_url, api_key=api_key, timeout=server.timeout,
                         max_retries=server.max_retries)


def describe_error(error: Exception, server: OpenAIServer, key: str) -> TunegateError:
    """One line for a request that failed after its retries: which server, what it said, what to check."""
    import openai

    if isinstance(error, openai.APIConnectionError):
        what = f"cannot reach {server.base_url} ({type(error).__name__}: {error})"
        fix = f"start the server, or correct {key}.base_url"
    elif isinstance(error, openai.APIStatusError):
        what = f"{server.base_url} answered HTTP {error.status_code}: {str(error)[:300]}"
        fix = (f"check {key}.api_key_env" if error.status_code in (401, 403)
               else f"check that it serves the model '{server.model}' ({key}.model)" if error.status_code == 404
               else "see the server's log")
    else:
        return TunegateError(f"{key}: request to {server.base_url} failed: {type(error).__name__}: {error}")
    return TunegateError(f"{key}: {what} after {server.max_retries} retries; {fix}")


def run_all(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """`fn` over `items` with at most `concurrency` calls in flight, results in order. The openai client is
    thread-safe, and each call mostly waits on the network."""
    items = list(items)
    if concurrency == 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(fn, items))
