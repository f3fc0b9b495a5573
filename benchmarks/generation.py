"""Greedy generation throughput, side by side in one run, on the bundled model and the golden prompts:

- naive: one prompt at a time through `model.generate` (what a hand-written eval loop does);
- hf-batched: left-padded batches through `model.generate`;
- tunegate: the engine (the same batches, longest prompts first, behind the cache; here uncached);
- ceiling: bare decoding steps at a full batch with nothing finishing, the most this model and
  batch size give on this machine.

With --adapter, every mode runs as that adapter: the engine with it merged (as in a run), the HF
modes through PEFT's unmerged layers (as the engine ran it before merging). Run it alone (2 cores),
after `make eval` has converted the bundled model:

    .venv/bin/python benchmarks/generation.py [--adapter .tunegate/registry/artifacts/<id>]

`--model` takes any saved model folder (tests/test_benchmarks.py runs this script on a tiny random
one, with the smallest settings). It uses the engine's public interface only (`using` for the
ceiling), so that it keeps running when the engine's internals change.

Measured (2026-11-23): decoding our own batches so that finished rows leave the batch and the KV
cache gave nothing over `model.generate` (candidate 19.4 s vs 18.8 s, base 26.5 s vs 27.3 s for
the 64 prompts), so the engine keeps `model.generate`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from harness.engine.local import Engine
from harness.engine.models import BUNDLED_FOLDER, BaseModelRef, load_model, load_tokenizer, local_fingerprint
from harness.roles import BASE

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = {"role": "system", "content": "You are the Nimbus Notes support assistant."}


def prompts(n: int) -> list[list[dict]]:
    rows = [json.loads(line) for line in (ROOT / "fixtures/demo/golden.jsonl").read_text().splitlines()][:n]
    return [[SYSTEM, *[m for m in r["messages"] if m["role"] != "assistant"]] for r in rows]


def hf_generate(model, tok, texts: list[str], batch_size: int, max_new_tokens: int) -> int:
    """Tokens generated (EOS and padding not counted) by `model.generate` in batches."""
    n = 0
    for start in range(0, len(texts), batch_size):
        enc = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = out[:, enc["input_ids"].shape[1] :]
        n += int(((new != tok.pad_token_id) & (new != tok.eos_token_id)).sum())
    return n


def ceiling(model, batch_size: int, steps: int = 40) -> float:
    """Tokens/s of bare decoding steps at a full batch (120-token prompts, cache on)."""
    from transformers import DynamicCache

    high = min(20000, model.config.vocab_size)  # a small test model's vocabulary is smaller
    ids = torch.randint(min(100, high // 2), high, (batch_size, 120))
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        nxt = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            nxt = model(input_ids=nxt[:, None], past_key_values=cache, use_cache=True).logits[:, -1].argmax(-1)
        return batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / ".tunegate/models" / BUNDLED_FOLDER))
    ap.add_argument("--adapter", help="a PEFT adapter folder to generate as")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--naive-prompts", type=int, default=8, help="the naive loop is slow: fewer prompts")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=72)
    ap.add_argument("--repeats", type=int, default=3, help="every mode runs this many times, interleaved")
    args = ap.parse_args()

    ref = BaseModelRef(args.model, local_fingerprint(Path(args.model)))
    tok = load_tokenizer(ref)
    convs = prompts(args.prompts)
    engine = Engine(load_model(ref, "bfloat16"), tok, ref, cache=None, batch_size=args.batch_size)
    role = BASE
    if args.adapter:
        engine.add_adapter("candidate", Path(args.adapter), "benchmark")
        role = "candidate"
    texts = [engine.render(c) for c in convs]

    hf_model = load_model(ref, "bfloat16")
    if args.adapter:
        from peft import PeftModel

        hf_model = PeftModel.from_pretrained(hf_model, args.adapter).eval()

    rates: dict[str, list[float]] = {}

    def timed(name: str, work) -> None:
        start = time.perf_counter()
        tokens = work()
        rates.setdefault(name, []).append(tokens / (time.perf_counter() - start))

    def engine_tokens() -> int:
        before = engine.stats.generated_tokens
        engine.generate(role, convs, args.max_new_tokens)
        return engine.stats.generated_tokens - before

    naive, batched, ours = "naive (1 at a time)", f"hf-batched (batch {args.batch_size})", f"tunegate (batch {args.batch_size})"
    for _ in range(args.repeats):
        timed(naive, lambda: hf_generate(hf_model, tok, texts[: args.naive_prompts], 1, args.max_new_tokens))
        timed(batched, lambda: hf_generate(hf_model, tok, texts, args.batch_size, args.max_new_tokens))
        timed(ours, engine_tokens)
        with engine.using(role):  # the role's weights in place, as the engine generates with them
            rates.setdefault("ceiling (full batch)", []).append(ceiling(engine.model, args.batch_size))

    print(f"{'mode':28} {'runs':>4} {'min tok/s':>10} {'median tok/s':>13}")
    for name, values in rates.items():
        print(f"{name:28} {len(values):4d} {min(values):10.1f} {statistics.median(values):13.1f}")
    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"tunegate / naive: {med[ours] / med[naive]:.1f}x (goal >= 5x); "
          f"tunegate / ceiling: {med[ours] / med['ceiling (full batch)']:.0%} (goal >= 70%)")


if __name__ == "__main__":
    main()
