"""The engine on a tiny random model: batching, caching, log-likelihood and adapter switching."""
import pytest
import torch

from harness.engine.local import Engine, budget_rows
from harness.engine.models import load_model
from harness.roles import BASE
from harness.store.cache import ResultCache

CONVS = [
    [{"role": "user", "content": "My invoice is wrong."}],
    [{"role": "user", "content": "How do I export a notebook to PDF from the web app today?"}],
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sync is broken on my phone."}],
    [{"role": "user", "content": "Please add dark mode to the web clipper."}],
]


@pytest.fixture()
def engine(tiny_ref, tiny_tokenizer, tmp_path):
    model = load_model(tiny_ref, "float32")
    return Engine(model, tiny_tokenizer, tiny_ref, ResultCache(tmp_path / "cache.sqlite"), batch_size=2)


def test_batched_generation_equals_one_at_a_time(engine):
    batched = engine.generate(BASE, CONVS, max_new_tokens=12)
    engine.cache = None
    engine.batch_size = 1
    single = [engine.generate(BASE, [c], max_new_tokens=12)[0] for c in CONVS]
    assert batched == single
    assert any(batched), "the tiny model should produce some text"


def test_generation_is_cached_by_content(engine):
    first = engine.generate(BASE, CONVS, max_new_tokens=8)
    assert engine.stats.generated == len(CONVS) and engine.stats.cache_hits == 0
    again = engine.generate(BASE, CONVS, max_new_tokens=8)
    assert again == first and engine.stats.generated == len(CONVS) and engine.stats.cache_hits == len(CONVS)
    engine.generate(BASE, CONVS, max_new_tokens=9)  # other settings: a different key
    assert engine.stats.generated == 2 * len(CONVS)


@pytest.mark.parametrize("pairs, forward_rows", [
    ([("The answer is", " billing"), ("Short", " a much longer continuation here"), ("x", " y")], 3),
    # the four single-token letters of a question share one forward row
    ([("Which is a river?\nA. Nile\nB. Alps\nAnswer:", f" {letter}") for letter in "ABCD"]
     + [("Another, longer question about geography?\nAnswer:", " B")], 2),
    # cloze choices of several tokens share one packed row: the context once, one branch per choice
    ([("Question: Which is a river?\nAnswer:", c) for c in (" the Nile", " the Alps mountains", " Everest", " x")]
     + [("Question: Which is a river?\nAnswer:", " the Nile")], 1),
])
def test_loglikelihood_matches_a_naive_forward(engine, pairs, forward_rows, monkeypatch):
    rows = []
    forward = engine._forward_packed
    monkeypatch.setattr(engine, "_forward_packed", lambda batch, *a: rows.extend(batch) or forward(batch, *a))
    got = engine.loglikelihood(BASE, pairs)
    tok, model = engine.tokenizer, engine.model
    for (ctx, cont), (lp, greedy) in zip(pairs, got):
        whole = tok(ctx + cont, add_special_tokens=False)["input_ids"]
        n_ctx = len(tok(ctx, add_special_tokens=False)["input_ids"])
        c, t = whole[:n_ctx], whole[n_ctx:]
        ids = torch.tensor([whole])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits.float(), -1)[0]
        expected = sum(logp[len(c) - 1 + i, t[i]].item() for i in range(len(t)))
        assert lp == pytest.approx(expected, abs=1e-4)
        assert greedy == all(logp[len(c) - 1 + i].argmax().item() == t[i] for i in range(len(t)))
    assert len(rows) == forward_rows


def test_budget_rows_cap_rows_and_padded_tokens():
    # a row wider than the budget still goes (alone); then 100 // 50 = 2 rows, then 3 (the row cap)
    assert [budget_rows(w, max_rows=3, max_tokens=100) for w in (120, 100, 50, 34, 30, 10, 0)] == [1, 1, 2, 2, 3, 3, 3]


def test_scoring_under_a_token_budget_gives_the_same_values(engine, monkeypatch):
    pairs = [(f"Question {i}: which plan covers {'many ' * i}notebooks?\nAnswer:", c)
             for i in range(6) for c in (" the Pro plan", " Free")]
    engine.cache = None
    roomy = [ll for ll, _ in engine.loglikelihood(BASE, pairs)]
    calls = []
    forward = engine._forward_packed
    monkeypatch.setattr(engine, "_forward_packed", lambda batch, *a: calls.append(len(batch)) or forward(batch, *a))
    engine.max_batch_tokens = 1  # every packed row alone
    assert [ll for ll, _ in engine.loglikelihood(BASE, pairs)] == pytest.approx(roomy, abs=1e-5)
    assert calls == [1] * 6


def test_lm_head_multiplies_a_contiguous_input(engine):
    """The engine hands the LM head a contiguous input even for the sliced positions HF passes it: with
    a frozen head weight, torch would otherwise broadcast the whole weight to every row."""
    for p in engine.model.parameters():
        p.requires_grad_(False)  # as after PEFT loads an adapter
    seen = []
    engine.model.get_output_embeddings().register_forward_pre_hook(lambda _, args: seen.append(args[0].is_contiguous()))
    engine.cache = None
    engine.loglikelihood(BASE, [("The answer is", " billing and sync")])
    engine.generate(BASE, CONVS[:2], max_new_tokens=3)
    assert seen and all(seen)


def _random_adapter(tiny_ref, path, seed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = get_peft_model(load_model(tiny_ref), LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"],
                                                            init_lora_weights=False))
    model.save_pretrained(path)
    return path


def test_adapters_switch_on_one_copy_of_the_base(engine, tiny_ref, tmp_path):
    base_out = engine.generate(BASE, CONVS, max_new_tokens=10)
    q_proj = engine.model.model.layers[0].self_attn.q_proj.weight
    snapshot = {n: p.detach().clone() for n, p in engine.model.named_parameters()}
    engine.add_adapter("candidate", _random_adapter(tiny_ref, tmp_path / "a1", 1), "fp-a1")
    engine.add_adapter("champion", _random_adapter(tiny_ref, tmp_path / "a2", 2), "fp-a2")
    cand = engine.generate("candidate", CONVS, max_new_tokens=10)
    champ = engine.generate("champion", CONVS, max_new_tokens=10)
    assert cand != base_out and champ != cand
    # one model, the same parameters; switching back to base restores its weights bit for bit
    assert engine.model.model.layers[0].self_attn.q_proj.weight is q_proj
    engine.cache = None
    assert engine.generate(BASE, CONVS, max_new_tokens=10) == base_out
    assert all(torch.equal(p, snapshot[n]) for n, p in engine.model.named_parameters())
    assert engine.loglikelihood("candidate", [("a", " b")]) != engine.loglikelihood(BASE, [("a", " b")])
    with pytest.raises(KeyError):
        engine.generate("nobody", CONVS[:1], 4)


def test_merged_adapter_answers_as_peft_does(engine, tiny_ref, tmp_path):
    """The candidate role computes what PEFT's own (unmerged) adapter computes, to float32 rounding."""
    from peft import PeftModel

    path = _random_adapter(tiny_ref, tmp_path / "a1", 1)
    engine.add_adapter("candidate", path, "fp-a1")
    pairs = [("My invoice is", " wrong and late"), ("Sync is", " broken")]
    merged_ll = [ll for ll, _ in engine.loglikelihood("candidate", pairs)]
    merged_out = engine.generate("candidate", CONVS, max_new_tokens=10)

    reference = Engine(PeftModel.from_pretrained(load_model(tiny_ref, "float32"), str(path)).eval(),
                       engine.tokenizer, tiny_ref, None, batch_size=2)
    assert reference.generate(BASE, CONVS, max_new_tokens=10) == merged_out
    assert [ll for ll, _ in reference.loglikelihood(BASE, pairs)] == pytest.approx(merged_ll, abs=1e-4)


def test_sampling_is_seeded_per_prompt_and_independent_of_order(engine):
    kw = {"temperature": 1.0, "top_p": 1.0, "seed": 7}
    first = engine.sample(BASE, CONVS, 4, 10, **kw)
    assert [len(s) for s in first] == [4] * len(CONVS)
    assert any(len(set(s)) > 1 for s in first), "sampling at temperature 1 should vary"
    engine.cache = None
    reordered = engine.sample(BASE, CONVS[::-1], 4, 10, **kw)[::-1]
    assert reordered == first  # each prompt's samples depend only on the seed and the prompt
    assert engine.sample(BASE, CONVS, 4, 10, **{**kw, "seed": 8}) != first


def test_gumbel_noise_argmax_samples_from_the_softmax():
    from harness.engine.local import GumbelNoise

    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    noise = GumbelNoise([123])
    draws = torch.stack([noise(None, logits).argmax(-1) for _ in range(20000)]).flatten()
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015)


def test_cache_hits_equal_fresh_results(tiny_ref, tiny_tokenizer, tmp_path):
    """A second run reads every result from the cache, computes nothing, and gets exactly what an
    engine without a cache computes afresh, for each kind of work and each role."""
    adapter = _random_adapter(tiny_ref, tmp_path / "a1", 1)
    pairs = [("The answer is", " billing"), ("Short", " a longer continuation"), ("x", " y")]

    def run(cache):
        engine = Engine(None, tiny_tokenizer, tiny_ref, cache, batch_size=2, dtype="float32",
                        load=lambda dtype: load_model(tiny_ref, dtype))
        engine.add_adapter("candidate", adapter, "fp-a1")
        out = {role: (engine.generate(role, CONVS, max_new_tokens=8),
                      engine.sample(role, CONVS[:2], 3, 8, temperature=0.9, top_p=0.95, seed=5),
                      engine.loglikelihood(role, pairs)) for role in (BASE, "candidate")}
        return out, engine.stats

    cache = ResultCache(tmp_path / "cache.sqlite")
    first, first_stats = run(cache)
    assert first_stats.computed_by_role == {BASE: 10, "candidate": 10} and first_stats.cache_hits == 0
    cached, cached_stats = run(ResultCache(tmp_path / "cache.sqlite"))
    assert cached_stats.computed_by_role == {} and cached_stats.cache_hits == 20
    assert first_stats.loads == ["float32"] and cached_stats.loads == []  # all cached: the model never loads
    fresh, _ = run(None)
    assert cached == fresh == first
    assert first[BASE] != first["candidate"]


def test_scoring_in_another_dtype_reloads_one_model_with_its_adapters(tiny_ref, tiny_tokenizer, tmp_path):
    """A bf16 engine asked for float32 scores (as MMLU asks) reloads the model in float32 with the adapter
    merged, frees the bf16 copy, gets what a float32 engine gets, and keeps the dtypes apart in the cache."""
    import weakref

    adapter = _random_adapter(tiny_ref, tmp_path / "a1", 1)
    pairs = [("My invoice is", " wrong and late"), ("Sync is", " broken")]
    engine = Engine(None, tiny_tokenizer, tiny_ref, ResultCache(tmp_path / "cache.sqlite"), batch_size=2,
                    dtype="bfloat16", load=lambda dtype: load_model(tiny_ref, dtype))
    engine.add_adapter("candidate", adapter, "fp-a1")
    engine.generate("candidate", CONVS[:2], max_new_tokens=4)
    bf16_model = weakref.ref(engine.model)
    assert engine.stats.loads == ["bfloat16"]

    fp32 = engine.loglikelihood("candidate", pairs, dtype="float32")
    assert engine.stats.loads == ["bfloat16", "float32"] and engine.model.dtype == torch.float32
    assert bf16_model() is None  # one copy of the model at a time
    reference = Engine(load_model(tiny_ref, "float32"), tiny_tokenizer, tiny_ref, None, batch_size=2)
    reference.add_adapter("candidate", adapter, "fp-a1")
    assert fp32 == reference.loglikelihood("candidate", pairs)

    bf16 = engine.loglikelihood("candidate", pairs)  # the default dtype: not float32's cache entries
    assert engine.stats.loads == ["bfloat16", "float32", "bfloat16"] and bf16 != fp32
