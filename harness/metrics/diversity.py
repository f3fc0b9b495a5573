"""Output diversity (the mode-collapse check): distinct-n, n-gram entropy and self-BLEU, within the
samples of one prompt and across prompts. Pure functions over lists of texts."""
from __future__ import annotations

import math
import re
from collections import Counter
from statistics import mean

_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def _all_ngrams(texts: list[str], n: int) -> list[tuple[str, ...]]:
    return [g for t in texts for g in ngrams(words(t), n)]


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams over the texts pooled (Li et al. 2016); 0 when there are none."""
    grams = _all_ngrams(texts, n)
    return len(set(grams)) / len(grams) if grams else 0.0


def ngram_entropy(texts: list[str], n: int) -> float:
    """Shannon entropy (bits) of the pooled n-gram distribution."""
    counts = Counter(_all_ngrams(texts, n))
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0


def self_bleu(texts: list[str]) -> float:
    """Mean BLEU-4 of each text against all the others as references (Zhu et al. 2018, Texygen,
    with NLTK's smoothing method 1). 1 means every text repeats the others; lower is more diverse."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    tokenised = [words(t) for t in texts]
    if len(tokenised) < 2:
        return 0.0
    smooth = SmoothingFunction().method1
    scores = []
    for i, hyp in enumerate(tokenised):
        refs = [r for j, r in enumerate(tokenised) if j != i and r]
        scores.append(sentence_bleu(refs, hyp, smoothing_function=smooth) if hyp and refs else 0.0)
    return mean(scores)


def summary(samples: list[list[str]]) -> dict:
    """Diversity of K samples for each of several prompts: within a prompt (averaged over prompts)
    and across prompts (each prompt's first sample pooled)."""
    firsts = [s[0] for s in samples if s]
    out = {"prompts": len(samples), "samples_per_prompt": max((len(s) for s in samples), default=0)}
    for n in (1, 2, 3):
        out[f"distinct_{n}_within"] = mean(distinct_n(s, n) for s in samples)
        out[f"distinct_{n}_across"] = distinct_n(firsts, n)
    out["entropy_2_within"] = mean(ngram_entropy(s, 2) for s in samples)
    out["entropy_2_across"] = ngram_entropy(firsts, 2)
    out["self_bleu_within"] = mean(self_bleu(s) for s in samples)
    out["self_bleu_across"] = self_bleu(firsts)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
