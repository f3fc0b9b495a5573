"""MMLU prompt formats (as lm-evaluation-harness writes them) and scoring."""
import pytest

from harness.mmlu import Question, context, continuations, requests, score

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
