"""Exact and near-duplicate texts, within one list and across two, by character shingles.

Texts are compared in `harness.data.examples.normalise` form (case, punctuation and spacing ignored), as
sets of character 5-grams, by Jaccard similarity. Character shingles, not word shingles, because
chat prompts are short: one changed word moves a third of a short prompt's word 3-grams but a
small share of its character 5-grams.

MinHash LSH (datasketch) proposes candidate pairs in about linear time instead of comparing every
pair; it runs at a threshold below the requested one so that pairs just above it are not lost to
the sketch's randomness, and every candidate is then confirmed by its exact Jaccard similarity.
So a reported pair is always above the threshold, and missing one needs an unlucky sketch far
below it.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

from harness.data.examples import normalise

SHINGLE = 5
NUM_PERM = 128
CANDIDATE_SLACK = 0.15  # LSH runs at threshold - slack; exact Jaccard decides


@dataclass(frozen=True)
class Pair:
    """Text `a` (of the first list) and text `b` (of the second list, or a later one of the same list)."""

    a: int
    b: int
    similarity: float


def shingles(text: str) -> frozenset[str]:
    t = normalise(text)
    if len(t) <= SHINGLE:
        return frozenset((t,))
    return frozenset(t[i : i + SHINGLE] for i in range(len(t) - SHINGLE + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _minhashes(sets: list[frozenset]):
    from datasketch import MinHash

    # crc32 instead of datasketch's default sha1: a shingle needs a well-spread 32-bit value, not a
    # cryptographic one, and sha1 was most of the check's time on 10,000 examples.
    return MinHash.bulk([[s.encode() for s in shingle_set] for shingle_set in sets], num_perm=NUM_PERM,
                        hashfunc=zlib.crc32)


class ShingleIndex:
    """Texts indexed once for near-duplicate queries: against themselves (`pairs`) or against any
    number of other lists (`matches`), e.g. one training file against every evaluation set."""

    def __init__(self, texts: list[str], threshold: float):
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.sets = [shingles(t) for t in texts]
        self.hashes = _minhashes(self.sets)
        self.lsh = MinHashLSH(threshold=max(0.05, threshold - CANDIDATE_SLACK), num_perm=NUM_PERM)
        with self.lsh.insertion_session() as session:
            for i, mh in enumerate(self.hashes):
                session.insert(i, mh)

    def _confirmed(self, candidates, other: frozenset, j: int) -> list[Pair]:
        return [Pair(i, j, sim) for i in candidates if (sim := jaccard(self.sets[i], other)) >= self.threshold]

    def pairs(self) -> list[Pair]:
        """Pairs (i < j) of the indexed texts at or above the threshold."""
        found = []
        for j, mh in enumerate(self.hashes):
            found += self._confirmed([i for i in self.lsh.query(mh) if i < j], self.sets[j], j)
        return sorted(found, key=lambda p: (p.b, p.a))

    def matches(self, texts: list[str]) -> list[Pair]:
        """Pairs (i indexed, j in `texts`) at or above the threshold."""
        other = [shingles(t) for t in texts]
        found = []
        for j, mh in enumerate(_minhashes(other)):
            found += self._confirmed(self.lsh.query(mh), other[j], j)
        return sorted(found, key=lambda p: (p.b, p.a))


def exact_groups(texts: list[str]) -> list[list[int]]:
    """Indices of texts identical after normalisation, in groups of two or more (first occurrence first)."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(normalise(text), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def near_pairs(texts: list[str], threshold: float) -> list[Pair]:
    """Pairs (i < j) of texts whose shingle Jaccard similarity is at least `threshold`."""
    return ShingleIndex(texts, threshold).pairs()


def clusters(n: int, pairs: list[Pair]) -> list[int]:
    """For each of `n` items, the smallest index it is connected to by `pairs` (union-find): items
    with the same representative are one cluster of duplicates."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in pairs:
        ra, rb = root(p.a), root(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(n)]
