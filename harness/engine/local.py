"""The evaluation engine: one copy of the model, whose weights are switched per role (the base's,
or an adapter merged into them), batched greedy generation and batched log-likelihood scoring, all
behind a content-keyed cache.

Roles: "base" runs on the untouched base weights; any other role is the name of a loaded adapter.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from harness.engine import scoring
from harness.engine.memory import release_memory
from harness.engine.models import BaseModelRef
from harness.engine.role_weights import RoleWeights
from harness.errors import TunegateError
from harness.roles import BASE
from harness.store.cache import ResultCache, cache_key


@dataclass
class EngineStats:
    """How much work the engine did, and how much the cache saved."""

    generated: int = 0
    generated_tokens: int = 0
    scored: int = 0
    cache_hits: int = 0
    computed_by_role: dict[str, int] = field(default_factory=dict)  # items not found in the cache
    loads: list[str] = field(default_factory=list)  # the dtype of each model load (lazy engines)
    requests: int = 0  # HTTP requests made (the OpenAI-compatible backend)
    # Each batch that ran out of memory and was halved: {"kind", "rows", "retry_rows", "setting", "limit"}.
    oom_halvings: list[dict] = field(default_factory=list)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class GumbelNoise:
    """A logits processor that turns greedy decoding into exact sampling (the Gumbel-max trick:
    argmax(logits + Gumbel noise) is a draw from softmax(logits)), with one seeded random stream per
    row. HF's own sampling draws the whole batch from one stream, so a row's sample would depend on
    which rows share its batch."""

    def __init__(self, seeds: list[int]):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        u = torch.stack([torch.rand(scores.shape[-1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
        return scores.float() + gumbel


def through_cache(cache: ResultCache | None, stats: EngineStats, role: str, keys: list[str], payloads: list,
                  compute: Callable[[list], list]) -> list:
    """Each payload's value: the cached one under its key where present; the rest computed in one call
    of `compute` (payloads in, values out, in order) and stored. Every engine backend goes through it."""
    found = cache.get_many(keys) if cache is not None else {}
    stats.cache_hits += len(found)
    todo = [i for i, k in enumerate(keys) if k not in found]
    if todo:
        stats.computed_by_role[role] = stats.computed_by_role.get(role, 0) + len(todo)
        fresh = compute([payloads[i] for i in todo])
        new = {keys[i]: v for i, v in zip(todo, fresh)}
        if cache is not None:
            cache.put_many(new)
        found.update(new)
    return [found[k] for k in keys]


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocation failure: CUDA's OutOfMemoryError, the RuntimeError of torch's CPU
    allocator ("DefaultCPUAllocator: can't allocate memory: you tried to allocate ..."), or another
    backend's "out of memory"."""
    message = str(error).lower()
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate memory" in message or "out of memory" in message))


def budget_rows(width: int, max_rows: int, max_tokens: int) -> int:
    """Rows in a scoring batch whose first (widest) row is `width` tokens: at most `max_rows` rows and at
    most `max_tokens` padded tokens (rows x width), one row at the least.

    Why tokens and not only rows: a scoring batch's memory grows with rows x width, and the long
    questions come first. Scoring the demo's 818 MMLU questions as one role in bf16, 16 rows a batch
    took 54.9 s and peaked 771 MB above the engine; at most 4096 tokens, 51.6 s and 570 MB; 2048,
    55.9 s and 400 MB; 1024, 59.8 s and 305 MB. In float32: 4096, 99.7 s and 1494 MB; 2048, 100.4 s
    and 895 MB."""
    return max(1, min(max_rows, max_tokens // max(1, width)))


class Engine:
    """Give it a loaded `model`; or `model=None` with `load(dtype) -> model` and the default `dtype`. A
    loader makes the model lazy: a run whose results are all cached never loads it, and a computation
    that asks for another dtype (MMLU is scored in float32) gets the model reloaded in that dtype, the
    other copy freed first so that only one is ever in memory."""

    def __init__(self, model, tokenizer, base: BaseModelRef, cache: ResultCache | None, batch_size: int = 16,
                 max_batch_tokens: int = 2048, *, load=None, dtype: str | None = None):
        if model is None and (load is None or dtype is None):
            raise ValueError("an Engine needs a model, or a loader and a dtype")
        self.tokenizer = tokenizer
        self.base = base
        self.cache = cache
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.dtype = dtype or _dtype_name(model.dtype)  # the default for every computation
        self.adapters: dict[str, str] = {}  # role -> adapter fingerprint
        self._adapter_paths: dict[str, Path] = {}
        self._load = load
        self._model = self.weights = None
        self.stats = EngineStats()
        # Limits an allocation failure lowered, kept for the engine's life (see _in_batches): generation's
        # rows, scoring's padded tokens.
        self._lowered: dict[str, int] = {}
        if model is not None:
            self._install(model)

    @property
    def model(self):
        """The model, loaded in the default dtype if nothing is loaded yet."""
        if self._model is None:
            self._ready(self.dtype)
        return self._model

    def _install(self, model) -> None:
        # HF applies the LM head to a slice of the hidden states (the last position, or the tail that
        # logits_to_keep asks for): a non-contiguous view. With a head weight that does not require
        # grad (PEFT's loading turns it off), torch's matmul then broadcasts the 49k x 576 weight to
        # every row, a 900 MB copy per batch of 16 (pytorch/pytorch#151934), instead of one matrix
        # product. A contiguous input takes the matrix-product path, with bit-identical logits: MMLU
        # scoring 95 s -> 53 s per role, and generation's prefill is spared the same copy.
        model.get_output_embeddings().register_forward_pre_hook(lambda _, args: (args[0].contiguous(), *args[1:]))
        self._model, self.weights = model, RoleWeights(model)
        for role, path in self._adapter_paths.items():
            self.weights.add(role, path)

    def _ready(self, dtype: str) -> None:
        """Make sure the model is loaded in `dtype`, with every adapter merged."""
        if self._model is not None and _dtype_name(self._model.dtype) == dtype:
            return
        if self._load is None:
            raise ValueError(f"this engine was given a {_dtype_name(self._model.dtype)} model and cannot load "
                             f"{dtype}; construct it with a loader")
        self._model = self.weights = None
        release_memory()  # the other dtype's copy, or training's model before the first load
        self.stats.loads.append(dtype)
        self._install(self._load(dtype))

    # ---- adapters -------------------------------------------------------------------------
    def add_adapter(self, role: str, path: Path, fingerprint: str) -> None:
        """Merge a PEFT adapter into a kept copy of the base weights, switched in as `role` (when the
        model is loaded: now or later)."""
        if role == BASE or role in self.adapters:
            raise ValueError(f"role {role!r} is already loaded")
        if self.weights is not None:
            self.weights.add(role, path)
        self._adapter_paths[role] = path
        self.adapters[role] = fingerprint

    @contextlib.contextmanager
    def using(self, role: str, dtype: str | None = None):
        """The model loaded (in `dtype`, else the default) with `role`'s weights, in inference mode."""
        if role != BASE and role not in self.adapters:
            raise KeyError(f"no adapter loaded for role {role!r}")
        self._ready(dtype or self.dtype)
        self.weights.use(role)
        with torch.inference_mode():
            yield

    def _key(self, role: str, kind: str, payload: object, settings: dict, dtype: str | None = None) -> str:
        # The dtype and the merged adapter change the numbers, so they are part of the key.
        return cache_key(
            kind=kind, model=self.base.fingerprint, dtype=f"torch.{dtype or self.dtype}",
            adapter=self.adapters.get(role), adapter_weights="merged", payload=payload, settings=settings,
        )

    def _cached(self, role: str, kind: str, payloads: list, settings: dict, compute, dtype: str | None = None) -> list:
        keys = [self._key(role, kind, p, settings, dtype) for p in payloads]
        return through_cache(self.cache, self.stats, role, keys, payloads, compute)

    # ---- batching -------------------------------------------------------------------------
    def _in_batches(self, kind: str, widths: list[int], run: Callable[[slice], None], one_row_fix: str) -> None:
        """Call `run(part)` on consecutive slices of the items, sorted widest first (`widths`, in tokens):
        at most engine.batch_size rows each and, when scoring, at most engine.max_batch_tokens padded
        tokens. `kind` is "generating" or "scoring".

        A batch that runs out of memory runs again as batches of half its rows, and the lower limit
        stays for the engine's life: memory that ran out seldom comes back within a run, and trying the
        larger size again would cost a failed batch each time. Memory peaks at the first, widest batch,
        so the batches are then exactly those of a run started with the lower limit, and so are the
        results (a later halving changes earlier rows' batches, which moves scores by float rounding
        only, as any batch size does; cache keys leave the batch size out). A single row that runs out
        of memory is a user error saying what to change (`one_row_fix`): no batch size can help it."""
        start = 0
        while start < len(widths):
            part = slice(start, min(len(widths), start + self._batch_rows(kind, widths[start])))
            try:
                run(part)
                start = part.stop
                continue
            except RuntimeError as error:  # torch.OutOfMemoryError is a RuntimeError too
                if not out_of_memory(error):
                    raise
                if part.stop - part.start == 1:
                    raise TunegateError(f"out of memory {kind} a single row of {widths[start]} tokens in "
                                        f"{_dtype_name(self._model.dtype)}: {one_row_fix}") from None
            # Out of the except block, the traceback that held the failed batch's tensors is gone, and
            # reference counting has freed them (a garbage collection here, 0.2 s, changed no halving in
            # tests/test_engine_oom.py).
            self._halve(kind, part.stop - part.start, widths[start])

    def _batch_rows(self, kind: str, width: int) -> int:
        """Rows in the next batch of `kind`, whose first row is `width` tokens, under the current limits."""
        if kind == "scoring":
            tokens = min(self.max_batch_tokens, self._lowered.get(kind, self.max_batch_tokens))
            return budget_rows(width, self.batch_size, tokens)
        return min(self.batch_size, self._lowered.get(kind, self.batch_size))

    def _halve(self, kind: str, rows: int, width: int) -> None:
        """Lower `kind`'s limit so that the batch of `rows` rows (the first `width` tokens wide) that ran
        out of memory is retried as half its rows; record it and say so."""
        half = rows // 2
        # Scoring's memory grows with rows x width, so its limit is lowered in padded tokens: a row limit
        # learnt on the widest rows, which come first, would starve the many narrower rows after them.
        # Generation batches are sized by rows alone, as engine.batch_size sizes them, so its limit is rows.
        if kind == "scoring":
            setting, limit, shape = "engine.max_batch_tokens", half * max(1, width), f"{rows} rows x {width} tokens"
        else:
            setting, limit, shape = "engine.batch_size", half, f"{rows} rows"
        self._lowered[kind] = limit
        self.stats.oom_halvings.append({"kind": kind, "rows": rows, "retry_rows": half, "setting": setting,
                                        "limit": limit})
        print(f"tunegate: out of memory {kind} a batch of {shape}; retrying with {half} rows, and {kind} with "
              f"{setting} = {limit} from now on (set it in the config to start there)", file=sys.stderr, flush=True)

    # ---- generation -----------------------------------------------------------------------
    def render(self, conversation: list[dict[str, str]]) -> str:
        """The exact prompt text, from the tokenizer's own chat template."""
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def generate(self, role: str, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        """Greedy answers for each conversation, as `role`. Cached by content."""
        prompts = [self.render(c) for c in conversations]
        settings = {"max_new_tokens": max_new_tokens, "decoding": "greedy"}
        return self._cached(role, "generate", prompts, settings, lambda todo: self._generate(role, todo, max_new_tokens))

    def complete(self, role: str, prompts: list[str], max_new_tokens: int, row_seeds: list[int] | None = None,
                 temperature: float = 1.0, top_p: float = 1.0) -> list[str]:
        """Answers to already-rendered prompts, uncached (for `tunegate serve`): greedy, or sampled with
        one seed a row."""
        return self._generate(role, prompts, max_new_tokens, row_seeds, temperature, top_p)

    def _generate(self, role: str, prompts: list[str], max_new_tokens: int, row_seeds: list[int] | None = None,
                  temperature: float = 1.0, top_p: float = 1.0) -> list[str]:
        """Greedy answers; or, with `row_seeds`, one sampled answer per prompt drawn with that row's own
        random stream (so a row's sample does not depend on the rows batched with it)."""
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

        tok = self.tokenizer
        encoded = tok(prompts, add_special_tokens=False)["input_ids"]
        # Longest first: similar lengths share a batch (less padding), and memory peaks early.
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out: list[str] = [""] * len(prompts)

        def run(part: slice) -> None:
            idx = order[part]
            enc = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            sampling = {}
            if row_seeds is not None:
                sampling["logits_processor"] = LogitsProcessorList([
                    TemperatureLogitsWarper(temperature), TopPLogitsWarper(top_p),
                    GumbelNoise([row_seeds[i] for i in idx]),
                ])
            gen = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,  # sampling, when asked, is the Gumbel-max argmax over noised logits
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                **sampling,
            )
            for i, text in zip(idx, self._decode(gen[:, enc["input_ids"].shape[1] :])):
                out[i] = text

        with self.using(role):
            self._in_batches("generating", [len(encoded[i]) for i in order], run,
                             f"lower the suite's max_new_tokens (now {max_new_tokens}) or free memory")
        self.stats.generated += len(prompts)
        return out

    def sample(self, role: str, conversations: list[list[dict[str, str]]], k: int, max_new_tokens: int, *,
               temperature: float, top_p: float, seed: int) -> list[list[str]]:
        """`k` sampled answers per conversation, as `role`. Each sample has its own random stream seeded
        from `seed`, the prompt text and the sample's index, so results do not depend on batching or
        order (and can be cached per prompt)."""
        prompts = [self.render(c) for c in conversations]
        settings = {"k": k, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                    "seed": seed, "decoding": "sample"}
        return self._cached(role, "sample", prompts, settings,
                            lambda todo: self._sample(role, todo, k, max_new_tokens, temperature, top_p, seed))

    def _sample(self, role: str, prompts: list[str], k: int, max_new_tokens: int, temperature: float,
                top_p: float, seed: int) -> list[list[str]]:
        rows = [p for p in prompts for _ in range(k)]
        seeds = []
        for p in prompts:
            base = int(hashlib.sha256(f"{seed}:{p}".encode()).hexdigest()[:15], 16)
            seeds.extend(base + j for j in range(k))
        texts = self._generate(role, rows, max_new_tokens, seeds, temperature, top_p)
        return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]

    def _decode(self, new_tokens: torch.Tensor) -> list[str]:
        """Generated rows to text, counting the real (non-padding) tokens."""
        pad = self.tokenizer.pad_token_id
        self.stats.generated_tokens += int((new_tokens != pad).sum())
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]

    # ---- log-likelihood -------------------------------------------------------------------
    def loglikelihood(self, role: str, pairs: list[tuple[str, str]], dtype: str | None = None
                      ) -> list[tuple[float, bool]]:
        """For each (context, continuation): the summed log-probability of the continuation's
        tokens given the context, and whether greedy decoding would have produced them. In `dtype`
        if given, else the engine's default."""
        payloads = [list(p) for p in pairs]
        values = self._cached(role, "loglikelihood", payloads, {},
                              lambda todo: self._loglikelihood(role, todo, dtype), dtype)
        return [(float(v[0]), bool(v[1])) for v in values]

    def _loglikelihood(self, role: str, pairs: list[list[str]], dtype: str | None = None) -> list[list]:
        rows = scoring.pack(self.tokenizer, pairs)
        out: list[list] = [[0.0, False]] * len(pairs)

        def run(batch: list[tuple[tuple[int, ...], list[tuple[int, ...]]]], shared: int, past) -> None:
            logits, where = self._forward_packed(batch, shared, past)
            for row, (ctx, conts) in enumerate(batch):
                for cont, positions in zip(conts, where[row]):
                    lp = torch.log_softmax(logits[row, positions].float(), dim=-1)
                    targets = torch.tensor(cont)
                    value = [lp.gather(1, targets[:, None]).sum().item(), bool((lp.argmax(-1) == targets).all())]
                    for i in rows[ctx][cont]:
                        out[i] = value

        with self.using(role, dtype):
            for shared, contexts in scoring.prefix_groups(list(rows)):
                past = self._prefix_cache(contexts[0][:shared]) if shared else None
                packed = sorted(((c, list(rows[c])) for c in contexts), key=lambda r: -scoring.width(*r, shared))
                widths = [scoring.width(*r, shared) for r in packed]
                self._in_batches("scoring", widths, lambda part: run(packed[part], shared, past),
                                 "free memory, or score in a smaller dtype (model.dtype; suites.mmlu.dtype for "
                                 "MMLU); no batch size can split a row")
        self.stats.scored += len(pairs)
        return out

    def _prefix_cache(self, prefix: tuple[int, ...]):
        """The keys and values of a prefix that a group of rows shares, computed once."""
        return self.model(input_ids=torch.tensor([prefix]), use_cache=True, logits_to_keep=1).past_key_values

    def _forward_packed(self, batch: list[tuple[tuple[int, ...], list[tuple[int, ...]]]], shared: int = 0,
                        past=None) -> tuple[torch.Tensor, list[list[list[int]]]]:
        """Run packed rows (context, continuations) in one forward pass, after the first `shared` context
        tokens whose keys and values are `past`. Returns the logits of each row's tail [rows, keep, vocab]
        and, per row and continuation, the tail positions whose logits predict that continuation's tokens."""
        ids, pos, mask, keep, where = scoring.layout(batch, self.tokenizer.pad_token_id, shared)
        cache = None
        if past is not None:
            cache = copy.deepcopy(past)  # the forward pass appends to it
            cache.batch_repeat_interleave(len(batch))
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                            use_cache=past is not None, logits_to_keep=keep).logits
        return logits, where
