"""Engine choice: the configured backend (local transformers, an OpenAI-compatible server, vLLM) with
the candidate, and the champion when it differs, loaded as switchable adapters."""
from __future__ import annotations

from pathlib import Path

from harness.config import Config
from harness.engine.local import Engine
from harness.engine.models import BaseModelRef, load_model, load_tokenizer
from harness.engine.remote import RemoteEngine
from harness.engine.vllm import VLLMEngine
from harness.roles import CANDIDATE, CHAMPION
from harness.store.cache import CACHE_FILE, ResultCache


def build_engine(config: Config, base: BaseModelRef, workspace: Path, candidate, champion):
    """One base model with the candidate (and a champion that is not the candidate) as adapters."""
    m, e = config.model, config.engine
    tokenizer = load_tokenizer(base, m.trust_remote_code)
    cache = ResultCache(workspace / CACHE_FILE)
    if e.backend == "openai":
        engine = RemoteEngine(e.openai, tokenizer, base, cache)
    elif e.backend == "vllm":
        engine = VLLMEngine(e.vllm, tokenizer, base, cache, m.dtype, m.trust_remote_code)
    else:
        engine = Engine(None, tokenizer, base, cache, e.batch_size, e.max_batch_tokens, dtype=m.dtype,
                        load=lambda dtype: load_model(base, dtype, m.trust_remote_code))
    engine.add_adapter(CANDIDATE, candidate.path, candidate.fingerprint)
    if champion is not None and champion.fingerprint != candidate.fingerprint:
        engine.add_adapter(CHAMPION, champion.path, champion.fingerprint)
    return engine
