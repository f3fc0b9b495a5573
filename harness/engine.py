"""The evaluation engine: one copy of the base weights, adapters switched on and off per role,
batched greedy generation and batched log-likelihood scoring, all behind a content-keyed cache.

Roles: "base" runs with every adapter disabled; any other role is the name of a loaded adapter.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.cache import ResultCache, cache_key
from harness.models import BaseModelRef

BASE = "base"


@dataclass
class EngineStats:
    """How much work the engine did, and how much the cache saved."""

    generated: int = 0
    generated_tokens: int = 0
    scored: int = 0
    cache_hits: int = 0
    by_role: dict[str, int] = field(default_factory=dict)


class Engine:
    def __init__(self, model, tokenizer, base: BaseModelRef, cache: ResultCache | None, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.base = base
        self.cache = cache
        self.batch_size = batch_size
        self.adapters: dict[str, str] = {}  # role -> adapter fingerprint
        self.stats = EngineStats()

    # ---- adapters -------------------------------------------------------------------------
    def add_adapter(self, role: str, path: Path, fingerprint: str) -> None:
        """Load a PEFT adapter under the name `role` on top of the shared base weights."""
        from peft import PeftModel

        if role == BASE or role in self.adapters:
            raise ValueError(f"role {role!r} is already loaded")
        if isinstance(self.model, PeftModel):
            self.model.load_adapter(str(path), adapter_name=role, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=role, is_trainable=False)
        self.model.eval()
        self.adapters[role] = fingerprint

    @contextlib.contextmanager
    def _as(self, role: str):
        if role == BASE:
            ctx = self.model.disable_adapter() if self.adapters else contextlib.nullcontext()
            with ctx, torch.inference_mode():
                yield
            return
        if role not in self.adapters:
            raise KeyError(f"no adapter loaded for role {role!r}")
        self.model.set_adapter(role)
        with torch.inference_mode():
            yield

    def _key(self, role: str, kind: str, payload: object, settings: dict) -> str:
        return cache_key(
            kind=kind, model=self.base.fingerprint, adapter=self.adapters.get(role), payload=payload, settings=settings
        )

    def _cached(self, role: str, kind: str, payloads: list, settings: dict, compute) -> list:
        """Return cached values where present; compute the rest in one call and store them."""
        keys = [self._key(role, kind, p, settings) for p in payloads]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        self.stats.cache_hits += len(found)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            fresh = compute([payloads[i] for i in todo])
            new = {keys[i]: v for i, v in zip(todo, fresh)}
            if self.cache is not None:
                self.cache.put_many(new)
            found.update(new)
        return [found[k] for k in keys]

    # ---- generation -----------------------------------------------------------------------
    def render(self, conversation: list[dict[str, str]]) -> str:
        """The exact prompt text, from the tokenizer's own chat template."""
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def generate(self, role: str, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        """Greedy answers for each conversation, as `role`. Cached by content."""
        prompts = [self.render(c) for c in conversations]
        settings = {"max_new_tokens": max_new_tokens, "decoding": "greedy"}
        outputs = self._cached(role, "generate", prompts, settings, lambda todo: self._generate(role, todo, max_new_tokens))
        self.stats.by_role[role] = self.stats.by_role.get(role, 0) + len(prompts)
        return outputs

    def _generate(self, role: str, prompts: list[str], max_new_tokens: int) -> list[str]:
        tok = self.tokenizer
        encoded = tok(prompts, add_special_tokens=False)["input_ids"]
        # Longest first: similar lengths share a batch (less padding), and memory peaks early.
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        out: list[str] = [""] * len(prompts)
        with self._as(role):
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = tok.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
                new = gen[:, enc["input_ids"].shape[1] :]
                for row, i in enumerate(idx):
                    ids = new[row]
                    self.stats.generated_tokens += int((ids != tok.pad_token_id).sum())
                    out[i] = tok.decode(ids, skip_special_tokens=True).strip()
        self.stats.generated += len(prompts)
        return out

    # ---- log-likelihood -------------------------------------------------------------------
    def loglikelihood(self, role: str, pairs: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """For each (context, continuation): the summed log-probability of the continuation's
        tokens given the context, and whether greedy decoding would have produced them."""
        payloads = [list(p) for p in pairs]
        values = self._cached(role, "loglikelihood", payloads, {}, lambda todo: self._loglikelihood(role, todo))
        return [(float(v[0]), bool(v[1])) for v in values]

    def _loglikelihood(self, role: str, pairs: list[list[str]]) -> list[list]:
        tok = self.tokenizer
        seqs = []
        context_lengths: dict[str, int] = {}  # the choices of a question share their context
        for context, continuation in pairs:
            # As lm-evaluation-harness does: tokenize the whole text and take the continuation as
            # what follows the context's tokens, so a merge across the boundary is scored as text.
            whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
            if context not in context_lengths:
                context_lengths[context] = len(tok(context, add_special_tokens=False)["input_ids"])
            n_ctx = context_lengths[context]
            seqs.append((whole, max(1, min(len(whole) - 1, len(whole) - n_ctx))))
        # Requests with the same model input share one forward pass: the four single-token
        # letter answers of a multiple-choice question all read the logits after its context.
        shared: dict[tuple[int, ...], list[int]] = {}
        for i, (whole, _) in enumerate(seqs):
            shared.setdefault(tuple(whole[:-1]), []).append(i)
        inputs = sorted(shared, key=len, reverse=True)
        out: list[list] = [[0.0, False]] * len(seqs)
        with self._as(role):
            for start in range(0, len(inputs), self.batch_size):
                batch = inputs[start : start + self.batch_size]
                keep = max(seqs[i][1] for inp in batch for i in shared[inp])
                # Left padding puts every row's scored positions at the end, so only the last
                # `keep` positions' logits are computed (a 49k vocabulary makes the rest costly).
                logits = self._forward_tail(batch, keep)
                logprobs = torch.log_softmax(logits.float(), dim=-1)  # once per row, shared by its requests
                for row, inp in enumerate(batch):
                    for i in shared[inp]:
                        whole, n_cont = seqs[i]
                        targets = torch.tensor(whole[-n_cont:])
                        lp = logprobs[row, keep - n_cont :]
                        total = lp.gather(1, targets[:, None]).sum().item()
                        out[i] = [total, bool((lp.argmax(-1) == targets).all())]
        self.stats.scored += len(seqs)
        return out

    def _forward_tail(self, rows: list[tuple[int, ...]], keep: int) -> torch.Tensor:
        """Logits of the last `keep` positions of each left-padded row: [rows, keep, vocab]."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for n, r in enumerate(rows):
            ids[n, width - len(r) :] = torch.tensor(r)
            mask[n, width - len(r) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
