"""MMLU prompt formats (as lm-evaluation-harness writes them) and scoring."""
import pytest

from harness.suites.mmlu_format import Question, context, continuations, requests, score

Q = Question("geo-1", "high_school_geography", " Which is a river? ", ("Nile", "Alps", "Sahara", "Gobi"), 0)
SHOT = Question("geo-0", "high_school_geography", "Which is a desert?", ("Nile", "Alps", "Sahara", "Gobi"), 2)


def test_letter_format_is_lm_eval_mmlu():
    assert context(Q, "letter") == (
        "The following are multiple choice questions (with answers) about high school geography.\n\n"
        "Which is a river?\nA. Nile\nB. Alps\nC. Sahara\nD. Gobi\nAnswer:"
    )
    assert continuations(Q, "letter") == [" A", " B", " C", " D"]


def test_cloze_format_and_shots():
    ctx = context(Q, "cloze", [SHOT])
    assert ctx == (
        "The following are multiple choice questions (with answers) about high school geography.\n\n"
        "Question: Which is a desert?\nAnswer: Sahara\n\n"
        "Question: Which is a river?\nAnswer:"
    )
    assert continuations(Q, "cloze") == [" Nile", " Alps", " Sahara", " Gobi"]
    assert len(requests([Q, SHOT], "cloze")) == 8


def test_scoring_raw_and_length_normalised():
    q = Question("x", "s", "q", ("a", "bbbbbbbbbb", "c", "d"), 1)
    # raw: choice 0 has the highest log-likelihood; per character, the long choice wins
    recs = score([q], [-2.0, -5.0, -3.0, -4.0], "cloze")
    assert recs[0]["pred"] == 0 and not recs[0]["correct"]
    assert recs[0]["pred_norm"] == 1 and recs[0]["correct_norm"]
    assert score([q], [-2.0, -5.0, -3.0, -4.0], "letter")[0]["pred_norm"] == 0  # no normalisation for letters
    with pytest.raises(ValueError):
        score([q], [0.0], "letter")


# Per format, questions whose prediction bf16 changed against float32 on this project's machine
# (near-tied choices); the test adds the first question of each subject.
NEAR_TIES = {"cloze": ("high_school_geography-110", "marketing-075", "nutrition-190", "nutrition-188"),
             "letter": ("high_school_geography-006", "marketing-195", "nutrition-062", "us_foreign_policy-077")}


def test_suite_scoring_predicts_as_one_plain_float32_forward_per_choice(repo_root):
    """What the MMLU speed-ups change (choices packed into one row, batches sorted and capped by
    tokens, only the needed logits, a bf16 engine reloaded for scoring) leaves every prediction as
    plain float32 scoring gives it, on real questions and the bundled model."""
    import torch

    from harness.config import load_config
    from harness.engine.local import Engine
    from harness.engine.models import load_model, load_tokenizer, resolve_base
    from harness.roles import BASE
    from harness.suites.mmlu import _questions

    cfg = load_config(repo_root / "tunegate.toml")
    assert cfg.model.dtype == "bfloat16" and cfg.suites.mmlu.dtype == "float32"
    ref = resolve_base("bundled", repo_root / ".tunegate")
    tok = load_tokenizer(ref)
    questions = [q for q, _ in _questions(cfg.path(cfg.suites.mmlu.path))]
    firsts = list({q.subject: q for q in reversed(questions)}.values())
    engine = Engine(None, tok, ref, None, dtype=cfg.model.dtype, load=lambda dtype: load_model(ref, dtype))
    plain = load_model(ref, "float32")
    for fmt, near_ties in NEAR_TIES.items():
        chosen = [q for q in questions if q.id in near_ties] + firsts
        pairs = requests(chosen, fmt)
        fast = [ll for ll, _ in engine.loglikelihood(BASE, pairs, cfg.suites.mmlu.dtype)]
        slow = []
        for ctx, cont in pairs:
            whole = tok(ctx + cont, add_special_tokens=False)["input_ids"]
            n_ctx = len(tok(ctx, add_special_tokens=False)["input_ids"])
            with torch.inference_mode():
                logp = torch.log_softmax(plain(torch.tensor([whole])).logits[0].float(), -1)
            slow.append(sum(logp[i - 1, whole[i]].item() for i in range(n_ctx, len(whole))))
        assert fast == pytest.approx(slow, abs=1e-3)  # bf16 would be off by up to ~0.9
        got, want = score(chosen, fast, fmt), score(chosen, slow, fmt)
        assert [(r["pred"], r["pred_norm"]) for r in got] == [(r["pred"], r["pred_norm"]) for r in want]
    assert engine.stats.loads == ["float32"]
