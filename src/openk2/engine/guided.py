"""Constrained decoding at the token level: the `TokenGuide` contract and the batched logit mask.

A guide belongs to one sequence. Before each sample it writes the set of allowed next tokens as
a packed bitmask (32 tokens per int32 word, the layout vLLM and the grammar libraries share);
the sampler sets every other logit to -inf for all guided rows at once and then samples as
usual, so temperature, top-k, top-p and seeds apply within the allowed set. After the sample the
engine hands the chosen token back with `advance`. `grammar.py` implements the contract.
"""

from __future__ import annotations

from typing import Protocol

import torch

_NEG_INF = float("-inf")


class TokenGuide(Protocol):
    """Per-sequence constraint on what the next token may be."""

    def fill_bitmask(self, bitmask_W: torch.Tensor) -> None:
        """Write the allowed next tokens into one int32 row of ceil(V / 32) words."""
        ...

    def advance(self, token_id: int) -> None:
        """Record the token that was produced."""
        ...


def bitmask_words(vocab_size: int) -> int:
    """Int32 words per row of a token bitmask."""
    return (vocab_size + 31) // 32


def allowed_tokens(guides: list[TokenGuide], vocab_size: int) -> torch.Tensor:
    """Bool [G, V]: which tokens each guide allows next."""
    bitmask_GW = torch.zeros(len(guides), bitmask_words(vocab_size), dtype=torch.int32)
    for g, guide in enumerate(guides):
        guide.fill_bitmask(bitmask_GW[g])
    return unpack_bitmask(bitmask_GW, vocab_size)


def unpack_bitmask(bitmask_GW: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Bool [G, V] from packed int32 words (bit i of word w = token 32 * w + i)."""
    shifts_32 = torch.arange(32, dtype=torch.int32)
    bits_GW32 = (bitmask_GW[:, :, None] >> shifts_32) & 1
    return bits_GW32.reshape(bitmask_GW.shape[0], -1)[:, :vocab_size].bool()


def mask_guided_rows(
    scores_RV: torch.Tensor, raw_RV: torch.Tensor, rows: list[int], guides: list[TokenGuide]
) -> torch.Tensor:
    """`scores_RV` with disallowed tokens at -inf on the guided `rows` (a new tensor).

    A row whose allowed tokens were all banned (e.g. min_tokens banning the stop token that a
    finished grammar needs) falls back to its raw logits: the grammar wins.
    """
    allowed_GV = allowed_tokens(guides, scores_RV.shape[1]).to(scores_RV.device)
    every_row = len(rows) == scores_RV.shape[0]
    index = torch.tensor(rows, device=scores_RV.device)
    neg_inf = torch.tensor(_NEG_INF, device=scores_RV.device)
    guided_GV = torch.where(allowed_GV, scores_RV if every_row else scores_RV[index], neg_inf)
    dead_G = guided_GV.amax(dim=1) == _NEG_INF
    if dead_G.any():
        raw_GV = torch.where(allowed_GV, raw_RV if every_row else raw_RV[index], neg_inf)
        guided_GV = torch.where(dead_G[:, None], raw_GV, guided_GV)
    if every_row:
        return guided_GV
    out_RV = scores_RV.clone()
    out_RV[index] = guided_GV
    return out_RV
