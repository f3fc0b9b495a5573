"""How log-likelihood requests are laid out for the forward pass.

- Packing: the continuations of one context share a row: the context once, then each continuation's
  tokens (but the last, which is only predicted) as a branch that attends to the context and to itself.
  The four single-token letters of an MMLU question need no branch at all.
- Shared prefixes: contexts that start with the same tokens (MMLU's description line and k-shot
  examples, the same for every question of a subject) are grouped, and the group's prefix runs once;
  its keys and values are then reused by every row of the group.
"""
from __future__ import annotations

import torch

Tokens = tuple[int, ...]
# Contexts must share this many leading tokens at least before sharing them is worth a group of their
# own: a group costs a prefix pass and smaller batches at its edges. (MMLU's description line alone is
# 17-22 tokens; a few shared tokens, such as "Question", are not worth splitting a batch.)
MIN_SHARED = 16
# Each level of prefix_groups' recursion shares a longer prefix; past this depth (never seen: it needs that
# many nested levels) the rest is left unshared rather than risking Python's recursion limit.
MAX_DEPTH = 200


def pack(tokenizer, pairs: list[list[str]]) -> dict[Tokens, dict[Tokens, list[int]]]:
    """context tokens -> continuation tokens -> indices of the pairs that asked for them."""
    context_lengths: dict[str, int] = {}
    rows: dict[Tokens, dict[Tokens, list[int]]] = {}
    for i, (context, continuation) in enumerate(pairs):
        # As lm-evaluation-harness does: tokenize the whole text and take the continuation as what
        # follows the context's tokens, so a merge across the boundary is scored as text.
        whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
        if context not in context_lengths:
            context_lengths[context] = len(tokenizer(context, add_special_tokens=False)["input_ids"])
        n_cont = max(1, min(len(whole) - 1, len(whole) - context_lengths[context]))
        rows.setdefault(tuple(whole[:-n_cont]), {}).setdefault(tuple(whole[-n_cont:]), []).append(i)
    return rows


def _common(a: Tokens, b: Tokens) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefix_groups(contexts: list[Tokens]) -> list[tuple[int, list[Tokens]]]:
    """The contexts in groups, each with the number of leading tokens all its members share and that
    run once for the group; the last group shares nothing (0). Chosen to save the most tokens: a group
    of n sharing p >= MIN_SHARED tokens saves p x (n - 1)."""
    ctx = sorted(contexts)
    # What neighbours share in sorted order; each context keeps at least its last token, whose logits
    # predict the continuation.
    lcp = [min(_common(a, b), len(a) - 1, len(b) - 1) for a, b in zip(ctx, ctx[1:])]

    def best(a: int, b: int, depth: int) -> tuple[int, list[tuple[int, list[Tokens]]]]:
        # ctx[a:b]: as one group sharing what all of them share, or split where that is least, whichever saves more
        if b - a == 1 or depth > MAX_DEPTH:
            return 0, [(0, ctx[a:b])]
        shared = min(lcp[a:b - 1])
        worth = shared if shared >= MIN_SHARED else 0
        whole = (worth * (b - a - 1), [(worth, ctx[a:b])])
        cuts = [i + 1 for i in range(a, b - 1) if lcp[i] == shared]
        parts = [best(s, e, depth + 1) for s, e in zip([a, *cuts], [*cuts, b])]
        split = (sum(saved for saved, _ in parts), [g for _, groups in parts for g in groups])
        return whole if whole[0] >= split[0] else split

    groups = best(0, len(ctx), 0)[1] if ctx else []
    # Contexts that share nothing worth it run together, in full batches.
    alone = [c for shared, members in groups if not shared for c in members]
    return [g for g in groups if g[0]] + ([(0, alone)] if alone else [])


def width(context: Tokens, continuations, shared: int = 0) -> int:
    """A packed row's length after its group's shared prefix: its own context, then each branch."""
    return len(context) - shared + sum(len(c) - 1 for c in continuations)


def layout(batch: list[tuple[Tokens, list[Tokens]]], pad_id: int, shared: int = 0):
    """Left-padded packed rows (context after the first `shared` tokens, continuations) as model inputs:
    ids, position ids and the boolean attention mask [rows, 1, width, shared + width] (every row sees
    the whole shared prefix), the number of tail positions whose logits are needed, and per row and
    continuation the tail positions whose logits predict that continuation's tokens."""
    layouts = []
    for ctx, conts in batch:
        own = len(ctx) - shared
        tokens, positions, segments = list(ctx[shared:]), list(range(shared, len(ctx))), [0] * own
        for j, cont in enumerate(conts, start=1):
            branch = cont[:-1]
            tokens += branch
            positions += range(len(ctx), len(ctx) + len(branch))
            segments += [j] * len(branch)
        layouts.append((tokens, positions, segments, own))
    w = max(len(t) for t, _, _, _ in layouts)
    # Only the logits from each row's last context token on are needed (a 49k vocabulary makes the
    # others costly); left padding lines those tails up at the end of the batch.
    keep = max(len(t) - own + 1 for t, _, _, own in layouts)
    ids = torch.full((len(batch), w), pad_id, dtype=torch.long)
    pos = torch.zeros((len(batch), w), dtype=torch.long)
    seg = torch.full((len(batch), w), -1, dtype=torch.long)
    where = []
    for n, ((tokens, positions, segments, own), (_, conts)) in enumerate(zip(layouts, batch)):
        pad = w - len(tokens)
        ids[n, pad:], pos[n, pad:], seg[n, pad:] = torch.tensor(tokens), torch.tensor(positions), torch.tensor(segments)
        last_ctx = pad + own - 1 - (w - keep)
        offset, row_where = last_ctx + 1, []
        for cont in conts:
            row_where.append([last_ctx] + list(range(offset, offset + len(cont) - 1)))
            offset += len(cont) - 1
        where.append(row_where)
    causal = torch.ones(w, w, dtype=torch.bool).tril()
    q, k = seg[:, :, None], seg[:, None, :]
    allowed = causal & (k >= 0) & (q >= 0) & ((k == 0) | (k == q))
    allowed |= torch.eye(w, dtype=torch.bool)  # padding rows attend to themselves (no empty softmax)
    allowed = torch.cat([torch.ones(len(batch), w, shared, dtype=torch.bool), allowed], dim=-1)
    return ids, pos, allowed[:, None], keep, where
