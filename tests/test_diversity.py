"""Diversity metrics on texts whose values can be worked out by hand."""
import pytest

from harness.metrics.diversity import distinct_n, ngram_entropy, self_bleu, summary


def test_distinct_n_counts_unique_over_all_ngrams():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b) (b a) (a b)
    assert distinct_n(["the cat", "the dog"], 1) == pytest.approx(3 / 4)
    assert distinct_n([""], 2) == 0.0


def test_entropy_in_bits():
    assert ngram_entropy(["a a b b"], 1) == pytest.approx(1.0)
    assert ngram_entropy(["a b c d"], 1) == pytest.approx(2.0)
    assert ngram_entropy(["a a a a"], 1) == 0.0


def test_self_bleu_is_one_for_copies_and_low_for_unrelated_texts():
    same = ["the quick brown fox jumps over the lazy dog"] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    different = ["the quick brown fox jumps over the lazy dog", "I would like a refund for my plan",
                 "sync stopped working on my phone yesterday"]
    assert self_bleu(different) < 0.1


def test_summary_separates_collapse_within_and_across_prompts():
    collapsed = summary([["the same answer every time"] * 4, ["the same answer every time"] * 4])
    varied = summary([["one two three", "four five six"], ["seven eight nine", "ten eleven twelve"]])
    assert collapsed["distinct_2_within"] == pytest.approx(4 / 16)
    assert collapsed["distinct_2_across"] == pytest.approx(4 / 8)
    assert varied["distinct_2_within"] == 1.0 and varied["distinct_2_across"] == 1.0
    assert collapsed["self_bleu_within"] > 0.99 > varied["self_bleu_within"]


def _gate(samples: dict[str, list[list[str]]], min_ratio: float = 0.6):
    from harness.suites import diversity
    from harness.suites.api import Evaluation

    settings = diversity.DiversitySettings.model_validate({"gates": {"min_ratio": min_ratio}})
    outcome = diversity.DiversityOutcome(prompts=[], samples=samples)
    return diversity.Diversity().gate("ratio_base", settings, Evaluation(outcome))


VARIED = [[f"w{p}{k} x{p}{k} y{p}{k} z{p}{k}" for k in range(4)] for p in range(12)]  # distinct-2 = 1 each


def test_diversity_gate_blocks_collapse_and_reports_values_in_one_unit():
    collapsed = [["same words every time here"] * 4 for _ in range(12)]  # distinct-2 = 4/16
    g = _gate({"base": VARIED, "candidate": collapsed})
    assert g.passed is False
    assert (g.value, g.baseline, g.base_value) == (0.25, 1.0, 1.0)  # distinct-2, not a ratio
    assert g.margin == pytest.approx(0.4)  # (1 - min_ratio) x the baseline's distinct-2
    assert g.ci[1] < g.baseline and "ratio 0.250" in g.detail


def test_diversity_gate_passes_a_candidate_as_varied_as_base():
    g = _gate({"base": VARIED, "candidate": VARIED})
    assert g.passed is True and g.value == g.baseline == 1.0
