"""Shared prefixes in log-likelihood scoring: how contexts are grouped, and that a prefix computed once
and reused gives the scores of a plain forward pass over each whole text."""
import pytest
import torch

from harness.engine import scoring
from harness.engine.local import Engine
from harness.engine.models import load_model
from harness.roles import BASE
from harness.suites import mmlu_format as mmlu


def test_groups_follow_what_contexts_share():
    physics = (1, 2, 3) + tuple(range(100, 140))  # a subject's 43-token prefix
    law = (1, 2, 3) + tuple(range(200, 240))
    contexts = [physics + (i, 7, 8) for i in range(5)] + [law + (i, 9) for i in range(4)] + [(5, 6)]
    groups = {len(members): shared for shared, members in scoring.prefix_groups(contexts)}
    # each subject is a group sharing its prefix and the question's first differing token is its own;
    # the 3 tokens all subjects share are too few to merge them; the odd one out shares nothing
    assert groups == {5: 43, 4: 43, 1: 0}
    assert sorted(c for _, members in scoring.prefix_groups(contexts) for c in members) == sorted(contexts)


def test_a_context_inside_another_keeps_its_last_token():
    short, long = tuple(range(60)), tuple(range(60)) + (9, 9, 9)
    [(shared, members)] = scoring.prefix_groups([long, short])
    assert shared == 59 and sorted(members) == [short, long]


def test_short_shared_prefixes_are_not_worth_a_group():
    contexts = [(1, 2, 3, i) for i in range(40)]  # 3 tokens shared by many: less than MIN_SHARED
    assert scoring.prefix_groups(contexts) == [(0, sorted(contexts))]


def _questions(n_subjects: int, per_subject: int) -> list[mmlu.Question]:
    return [mmlu.Question(f"s{s}-{i}", f"subject_{s}", f"Which plan number {i} fits team {s}?",
                          (f"Free {i}", "Pro plan", f"Team plan {s}", "none of these plans at all"), i % 4)
            for s in range(n_subjects) for i in range(per_subject)]


@pytest.mark.parametrize("fmt", ["letter", "cloze"])
def test_shared_prefix_scores_equal_a_plain_forward(tiny_ref, tiny_tokenizer, fmt, monkeypatch):
    """k-shot MMLU prompts: the description and solved examples run once per subject, and every score
    and greedy flag equals a plain float32 forward pass over the whole text."""
    questions = _questions(3, 5)
    shots = {q.subject: [s for s in questions if s.subject == q.subject][:2] for q in questions}
    pairs = mmlu.requests(questions, fmt, shots)
    model = load_model(tiny_ref, "float32")
    engine = Engine(model, tiny_tokenizer, tiny_ref, None, batch_size=4)
    prefixes = []
    compute = engine._prefix_cache
    monkeypatch.setattr(engine, "_prefix_cache", lambda p: prefixes.append(len(p)) or compute(p))
    got = engine.loglikelihood(BASE, pairs)
    assert len(prefixes) == 3 and min(prefixes) > 60  # one per subject: its description and two shots
    for (ctx, cont), (lp, greedy) in zip(pairs, got):
        whole = tiny_tokenizer(ctx + cont, add_special_tokens=False)["input_ids"]
        n_ctx = len(tiny_tokenizer(ctx, add_special_tokens=False)["input_ids"])
        with torch.inference_mode():
            logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), -1)
        targets = range(n_ctx, len(whole))
        assert lp == pytest.approx(sum(logp[i - 1, whole[i]].item() for i in targets), abs=1e-4)
        assert greedy == all(logp[i - 1].argmax().item() == whole[i] for i in targets)
