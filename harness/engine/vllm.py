"""The evaluation engine on vLLM in this process (`tunegate[vllm]`, GPU machines): the local engine's
interface (generate, sample, loglikelihood per role) on vLLM's offline `LLM`, with adapters as
`LoRARequest`s, behind the same content-keyed cache.

Written to vLLM's documented API and not run here: the project's machines have no GPU (see the README).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.engine.local import EngineStats, through_cache
from harness.engine.models import BaseModelRef
from harness.engine.remote import sample_seeds, scoring_rows
from harness.errors import TunegateError
from harness.roles import BASE
from harness.store.cache import ResultCache, cache_key

if TYPE_CHECKING:  # the config sits above the engines; only its type is needed here
    from harness.config import VLLMEngineConfig


def import_vllm():
    """vllm, or one line saying how to get it."""
    try:
        import vllm
    except ImportError:
        raise TunegateError('engine.backend = "vllm" needs vLLM: pip install "tunegate[vllm]" on a machine with a '
                            'GPU, or use backend = "openai" against a vLLM server') from None
    return vllm


class VLLMEngine:
    """One vLLM `LLM` over the base model; each adapter role is a `LoRARequest` on it."""

    def __init__(self, settings: VLLMEngineConfig, tokenizer, base: BaseModelRef, cache: ResultCache | None,
                 dtype: str, trust_remote_code: bool = False):
        vllm = import_vllm()
        self.tokenizer = tokenizer
        self.base = base
        self.cache = cache
        self.dtype = dtype
        self.adapters: dict[str, str] = {}  # role -> adapter fingerprint
        self._lora: dict[str, object] = {}  # role -> LoRARequest
        self.stats = EngineStats()
        self.llm = vllm.LLM(model=base.source, revision=base.revision, dtype=dtype, seed=0, enable_lora=True,
                            max_loras=2, max_lora_rank=settings.max_lora_rank,
                            gpu_memory_utilization=settings.gpu_memory_utilization,
                            tensor_parallel_size=settings.tensor_parallel_size, max_model_len=settings.max_model_len,
                            trust_remote_code=trust_remote_code)

    def add_adapter(self, role: str, path: Path, fingerprint: str) -> None:
        from vllm.lora.request import LoRARequest

        if role == BASE or role in self.adapters:
            raise ValueError(f"role {role!r} is already loaded")
        self.adapters[role] = fingerprint
        self._lora[role] = LoRARequest(role, len(self._lora) + 1, str(Path(path).resolve()))

    def _cached(self, role: str, kind: str, payloads: list, settings: dict, compute) -> list:
        if role != BASE and role not in self.adapters:
            raise KeyError(f"no adapter loaded for role {role!r}")
        keys = [cache_key(kind=kind, model=self.base.fingerprint, dtype=f"vllm:{self.dtype}",
                          adapter=self.adapters.get(role), adapter_weights="lora", payload=p, settings=settings)
                for p in payloads]
        return through_cache(self.cache, self.stats, role, keys, payloads, compute)

    def render(self, conversation: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def _run(self, role: str, prompts: list, params) -> list:
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self._lora.get(role))
        self.stats.generated += len(outputs)
        self.stats.generated_tokens += sum(len(o.outputs[0].token_ids) for o in outputs)
        return outputs

    def generate(self, role: str, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        from vllm import SamplingParams

        prompts = [self.render(c) for c in conversations]
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        return self._cached(role, "generate", prompts, {"max_new_tokens": max_new_tokens, "decoding": "greedy"},
                            lambda todo: [o.outputs[0].text.strip() for o in self._run(role, todo, params)])

    def sample(self, role: str, conversations: list[list[dict[str, str]]], k: int, max_new_tokens: int, *,
               temperature: float, top_p: float, seed: int) -> list[list[str]]:
        from vllm import SamplingParams

        prompts = [self.render(c) for c in conversations]
        settings = {"k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                    "seed": seed, "decoding": "sample"}

        def compute(todo: list[str]) -> list[list[str]]:
            rows = [(p, s) for p in todo for s in sample_seeds(p, k, seed)]
            params = [SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, seed=s)
                      for _, s in rows]
            texts = [o.outputs[0].text.strip() for o in self._run(role, [p for p, _ in rows], params)]
            return [texts[i * k:(i + 1) * k] for i in range(len(todo))]

        return self._cached(role, "sample", prompts, settings, compute)

    def loglikelihood(self, role: str, pairs: list[tuple[str, str]], dtype: str | None = None
                      ) -> list[tuple[float, bool]]:
        """As the local engine's, from vLLM's prompt log-probabilities (`dtype` is the engine's own)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        def compute(todo: list[list[str]]) -> list[list]:
            rows = scoring_rows(self.tokenizer, todo)
            params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1)
            outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids, _ in rows], params,
                                        use_tqdm=False, lora_request=self._lora.get(role))
            out = []
            for (ids, start), o in zip(rows, outputs):
                picked = [o.prompt_logprobs[i][ids[i]] for i in range(start, len(ids))]
                out.append([float(sum(p.logprob for p in picked)), all(p.rank == 1 for p in picked)])
            self.stats.scored += len(out)
            return out

        values = self._cached(role, "loglikelihood", [list(p) for p in pairs], {}, compute)
        return [(float(v[0]), bool(v[1])) for v in values]

