"""The vLLM backend. Its engine tests need vLLM and a GPU, and skip without them, saying which is missing:
the project's machines have neither, so these have never run here (README). Without vLLM, choosing it
is one line saying how to get it."""
from __future__ import annotations

import importlib.util

import pytest

from harness.engine.local import Engine
from harness.engine.models import load_model
from harness.errors import TunegateError
from harness.roles import BASE


def gpu_and_vllm() -> str | None:
    """Why the vLLM tests cannot run here, or None."""
    if importlib.util.find_spec("vllm") is None:
        return 'vLLM is not installed (pip install "tunegate[vllm]")'
    import torch

    return None if torch.cuda.is_available() else "no CUDA GPU on this machine; vLLM's offline engine needs one"


needs_gpu = pytest.mark.skipif(gpu_and_vllm() is not None, reason=str(gpu_and_vllm()))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_choosing_vllm_without_it_is_one_line(tiny_ref, tiny_tokenizer):
    from harness.config import VLLMEngineConfig
    from harness.engine.vllm import VLLMEngine

    with pytest.raises(TunegateError, match=r'^engine.backend = "vllm" needs vLLM: pip install "tunegate\[vllm\]"'):
        VLLMEngine(VLLMEngineConfig(), tiny_tokenizer, tiny_ref, None, "float32")


@needs_gpu
def test_vllm_answers_as_the_local_engine(tiny_ref, tiny_tokenizer, tmp_path):
    from harness.config import VLLMEngineConfig
    from harness.engine.vllm import VLLMEngine
    from harness.fingerprints import adapter_fingerprint
    from tests.test_engine import CONVS, _random_adapter
    from tests.test_openai_backend import PAIRS

    local = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None)
    engine = VLLMEngine(VLLMEngineConfig(gpu_memory_utilization=0.3), tiny_tokenizer, tiny_ref, None, "float32")
    path = _random_adapter(tiny_ref, tmp_path / "a", seed=3)
    for e in (local, engine):
        e.add_adapter("candidate", path, adapter_fingerprint(path))
    for role in (BASE, "candidate"):
        got, want = engine.generate(role, CONVS, 12), local.generate(role, CONVS, 12)
        assert sum(g == w for g, w in zip(got, want)) >= len(CONVS) - 1  # GPU kernels may flip a near-tie
        lls = engine.loglikelihood(role, PAIRS)
        assert [v for v, _ in lls] == pytest.approx([v for v, _ in local.loglikelihood(role, PAIRS)], abs=0.05)
    samples = engine.sample(BASE, CONVS[:2], k=3, max_new_tokens=8, temperature=0.9, top_p=0.95, seed=7)
    assert samples == engine.sample(BASE, CONVS[:2], k=3, max_new_tokens=8, temperature=0.9, top_p=0.95, seed=7)
