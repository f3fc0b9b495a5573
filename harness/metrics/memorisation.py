"""Memorisation: does a model reproduce training answers verbatim? A run of `n` words counts only
when it is distinctive of one training answer: in that answer, not in its prompt, and in no other
training answer (shared templates and words copied from the prompt are not memorisation)."""
from __future__ import annotations

from collections import Counter

from harness.metrics.diversity import ngrams, words


def distinctive_ngrams(answers: list[str], prompts: list[str], n: int) -> list[set[tuple[str, ...]]]:
    """For each training answer, its n-grams found in no other answer and not in its own prompt."""
    per_answer = [set(ngrams(words(a), n)) for a in answers]
    counts = Counter(g for grams in per_answer for g in grams)
    return [{g for g in grams if counts[g] == 1} - set(ngrams(words(p), n))
            for grams, p in zip(per_answer, prompts)]


def reproduces(output: str, distinctive: set[tuple[str, ...]], n: int) -> bool:
    """The output contains one of the answer's distinctive n-grams."""
    return bool(distinctive) and any(g in distinctive for g in ngrams(words(output), n))
