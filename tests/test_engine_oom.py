"""Out of memory in the engine, for real: a child process caps its own address space (RLIMIT_AS), so the
big tensors of a batch fail to allocate in torch's CPU allocator. The engine halves the batch, retries,
says so, and gets what a run with the smaller batch gets; a single row that cannot fit is one line."""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from harness.engine.local import out_of_memory
from harness.store.results import results_schema

ROOT = Path(__file__).resolve().parents[1]
MARGIN_MB = 128  # the headroom the child leaves itself above its warmed-up size
WORDS = "invoice sync notebook export billing plan dark mode clipper phone web app broken late".split()


def text(i: int, n: int) -> str:
    return " ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(n))


# One long item, then many short ones. A batch is padded to its longest item, so a batch of all of them
# needs far more memory than the margin (scoring: 256 rows x 138 kept positions x 32k logits, 4.5 GB;
# generation: a ~1100-token prompt's attention mask for each of 128 rows, ~0.8 GB), while the few rows
# it is halved down to, and the short items after them, need some tens of MB and little computing.
PAIRS = [("Q0: " + text(0, 4) + "\nA:", " " + text(1, 50))] + [(f"Q{i}: {text(i, 4)}\nA:", " " + text(i, 1))
                                                               for i in range(1, 256)]
CONVS = [[{"role": "user", "content": text(0, 400)}]] + [[{"role": "user", "content": text(i, 5)}]
                                                         for i in range(1, 128)]
# One row whose logits alone (~3000 positions x 32k, ~380 MB) are more than the margin.
ONE_ROW = [("Q: " + text(0, 3) + "\nA:", " " + text(2, 1100))]


@pytest.fixture(scope="module")
def wide_vocab_model(tiny_tokenizer, tmp_path_factory) -> Path:
    """A one-layer Llama with a 32k vocabulary, so that logits and masks, not weights, take the memory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("wide-vocab")
    tok = tiny_tokenizer
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=32_000, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
        initializer_range=0.3))
    with torch.no_grad():  # ids past the tokenizer's 512 decode to nothing: answers should seldom pick them
        model.lm_head.weight[len(tok):] = 0
        model.lm_head.weight[: len(tok)] *= 4
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def capped_run(wide_vocab_model) -> tuple[dict, list[str]]:
    """The child's JSON answer and its stderr lines. One child serves both tests below: its imports
    cost more than its work."""
    # The limit is process-wide, so it is set in a child, never in pytest's own process. One thread and
    # no tokenizer pool: no other thread allocates while the limit is set.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    code = f"from tests.test_engine_oom import child; child({str(wide_vocab_model)!r})"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), done.stderr.splitlines()


def child(model_dir: str) -> None:
    """In the child: warm up, then run the engine with its address space capped at the warmed-up size plus
    MARGIN_MB, and an uncapped reference; print what happened as JSON."""
    import resource

    from harness.engine.local import Engine
    from harness.engine.models import load_model, load_tokenizer, resolve_base
    from harness.errors import TunegateError
    from harness.roles import BASE

    def scores(engine: Engine) -> list:
        return engine.loglikelihood(BASE, PAIRS)

    def answers(engine: Engine) -> list:
        return engine.generate(BASE, CONVS, 3)

    def samples(engine: Engine) -> list:  # the long prompt twice in 64 rows
        return engine.sample(BASE, CONVS[:32], 2, 3, temperature=1.0, top_p=0.9, seed=7)

    ref = resolve_base(model_dir, Path(model_dir) / "ws")
    engine = Engine(load_model(ref, "float32"), load_tokenizer(ref), ref, None, batch_size=4)
    # Warm-up: the allocator's heap, the tokenizer and the model's first-call set-up exist before the cap.
    engine.loglikelihood(BASE, PAIRS[:3])
    engine.generate(BASE, CONVS[:3], 2)
    engine.sample(BASE, CONVS[:2], 2, 2, temperature=1.0, top_p=0.9, seed=1)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)

    @contextlib.contextmanager
    def capped():
        size = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + MARGIN_MB * 2**20, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))  # a soft limit may be raised again

    engine.batch_size, engine.max_batch_tokens = 1024, 10**9  # every item in one batch
    with capped():
        answer = {"capped": {"scores": scores(engine), "answers": answers(engine), "samples": samples(engine)},
                  "halvings": engine.stats.oom_halvings}
    # The reference, uncapped: engines started with the limits the capped one ended with.
    limits = {h["kind"]: h["limit"] for h in engine.stats.oom_halvings}
    scorer = Engine(engine.model, engine.tokenizer, ref, None, 1024, limits.get("scoring", 10**9))
    generator = Engine(engine.model, engine.tokenizer, ref, None, limits.get("generating", 1024))
    answer["reference"] = {"scores": scores(scorer), "answers": answers(generator), "samples": samples(generator)}
    answer["reference_halvings"] = scorer.stats.oom_halvings + generator.stats.oom_halvings
    try:
        with capped():
            engine.loglikelihood(BASE, ONE_ROW)
    except TunegateError as e:  # anything else fails the child, with its traceback
        answer["one_row_error"] = str(e)
    print(json.dumps(answer))


def test_out_of_memory_halves_the_batch_and_gets_what_a_smaller_batch_gets(capped_run):
    got, stderr = capped_run
    halvings = got["halvings"]
    # Per kind, one chain: the whole batch failed first, then each retry, halved. Lowered limits stay:
    # sampling, after generation, holds the long prompt twice in 64 rows; starting again from 64 rather
    # than from generation's lowered limit would run out of memory and break the chain.
    for kind, whole in (("scoring", len(PAIRS)), ("generating", len(CONVS))):
        chain = [h for h in halvings if h["kind"] == kind]
        assert chain, f"the capped engine should have run out of memory {kind}"
        assert chain[0]["rows"] == whole
        assert all(a["retry_rows"] == b["rows"] for a, b in zip(chain, chain[1:]))
        assert all(h["retry_rows"] == h["rows"] // 2 for h in chain)
    jsonschema.validate({"oom_halvings": halvings}, results_schema()["properties"]["engine"])  # as in results.json
    # Said so: one line on stderr per halving.
    said = [line for line in stderr if line.startswith("tunegate: out of memory")]
    assert len(said) == len(halvings)
    for line, h in zip(said, halvings):
        assert re.fullmatch(rf"tunegate: out of memory {h['kind']} a batch of {h['rows']} rows( x \d+ tokens)?; "
                            rf"retrying with {h['retry_rows']} rows, and {h['kind']} with {h['setting']} = "
                            rf"{h['limit']} from now on \(set it in the config to start there\)", line)
    # The same results as an uncapped engine started with the limits the capped one ended with.
    assert got["capped"] == got["reference"] and got["reference_halvings"] == []
    assert any(got["capped"]["answers"]) and any(len(set(s)) > 1 for s in got["capped"]["samples"])


def test_a_single_row_out_of_memory_is_one_line_naming_what_to_change(capped_run):
    got, _ = capped_run
    assert "one_row_error" in got, "a single row over the margin should have failed"
    message = got["one_row_error"]
    assert "\n" not in message
    assert re.fullmatch(r"out of memory scoring a single row of \d+ tokens in float32: free memory, or score in a "
                        r"smaller dtype \(model\.dtype; suites\.mmlu\.dtype for MMLU\); no batch size can split a row",
                        message)


def test_allocation_failures_are_told_from_other_errors():
    """The CPU allocator's real failure counts as out of memory; a real shape error does not."""
    with pytest.raises(RuntimeError) as failed:
        torch.empty(1 << 50, dtype=torch.uint8)  # 1 PB: more than any address space
    assert "can't allocate memory" in str(failed.value) and out_of_memory(failed.value)
    with pytest.raises(RuntimeError) as wrong:
        torch.ones(2, 3) @ torch.ones(2, 3)
    assert not out_of_memory(wrong.value)
    assert not out_of_memory(ValueError("out of memory"))  # only torch's RuntimeErrors
