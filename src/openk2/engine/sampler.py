"""Batched token selection: temperature, top-k, min-p, top-p, penalties, seeds, bans, guides
and logprobs.

Every random draw comes from the sequence's own generator, so a seeded sequence repeats exactly
whatever else is in the batch. Free rows sample by inverse CDF, restricted to their top-p
nucleus by rejection (`top_p.py`).
Guided rows (structured outputs) first get their grammar's token mask (`guided.py`), so every
filter and draw below works within the allowed tokens, exactly as for a free row.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openk2.engine.guided import mask_guided_rows
from openk2.engine.sequence import Sequence, TokenLogprob
from openk2.engine.top_p import draw_in_nucleus

_NEG_INF = float("-inf")


@dataclass(slots=True)
class SampleRow:
    """A sequence to sample for, and the token ids it may not produce right now."""

    seq: Sequence
    banned: frozenset[int] = frozenset()


def sample(logits_RV: torch.Tensor, rows: list[SampleRow]) -> list[TokenLogprob]:
    """Pick one token per row of logits (float32); returns the token with its logprobs."""
    if logits_RV.shape[0] != len(rows):
        raise ValueError(f"{logits_RV.shape[0]} logit rows for {len(rows)} sequences")
    scores_RV = logits_RV
    if any(_needs_adjusting(row) for row in rows):
        scores_RV = logits_RV.clone()
        for r, row in enumerate(rows):
            _adjust_row(scores_RV[r], row)
    seqs = [row.seq for row in rows]
    guided = [r for r, s in enumerate(seqs) if s.guide is not None]
    if guided:
        guides = [seqs[r].guide for r in guided]
        scores_RV = mask_guided_rows(scores_RV, logits_RV, guided, guides)  # type: ignore[arg-type]
    scores_RV = _filtered_scores(scores_RV, seqs)
    tokens = [0] * len(seqs)
    _draw_free_rows(scores_RV, seqs, tokens)
    greedy = [r for r, s in enumerate(seqs) if s.params.greedy]
    if greedy:  # top-p always keeps the best token
        for r, token in zip(greedy, scores_RV[greedy].argmax(dim=1).tolist(), strict=True):
            tokens[r] = token
    return _logprobs(logits_RV, tokens, [s.params.logprobs for s in seqs])


def _draw_free_rows(scores_RV: torch.Tensor, seqs: list[Sequence], tokens: list[int]) -> None:
    """Sample the non-greedy rows (in place into `tokens`)."""
    free = [r for r, s in enumerate(seqs) if not s.params.greedy]
    if not free:
        return
    top_p = torch.tensor([seqs[r].params.top_p for r in free], device=scores_RV.device)
    free_RV = scores_RV if len(free) == len(seqs) else scores_RV[free]
    drawn = draw_in_nucleus(free_RV, top_p, [seqs[r].generator for r in free])
    for r, token in zip(free, drawn, strict=True):
        tokens[r] = token


def _needs_adjusting(row: SampleRow) -> bool:
    params = row.seq.params
    penalised = (params.presence_penalty or params.frequency_penalty) and row.seq.num_output_tokens
    repeated = params.repetition_penalty != 1.0
    return bool(params.logit_bias or penalised or repeated or row.banned)


def _adjust_row(scores_V: torch.Tensor, row: SampleRow) -> None:
    """Logit bias, presence/frequency penalties over the output so far, the repetition penalty
    over prompt and output, then bans (in place)."""
    params = row.seq.params
    device = scores_V.device
    if params.logit_bias:
        ids = torch.tensor(list(params.logit_bias), dtype=torch.long, device=device)
        bias = torch.tensor(list(params.logit_bias.values()), dtype=scores_V.dtype, device=device)
        scores_V[ids] += bias
    if (params.presence_penalty or params.frequency_penalty) and row.seq.num_output_tokens:
        out_ids = torch.tensor(row.seq.output_token_ids, dtype=torch.long, device=device)
        counts_V = torch.bincount(out_ids, minlength=scores_V.shape[0]).to(scores_V.dtype)
        scores_V -= params.frequency_penalty * counts_V + params.presence_penalty * (counts_V > 0)
    if params.repetition_penalty != 1.0:
        seen = torch.tensor(row.seq.token_ids, dtype=torch.long, device=device).unique()
        values = scores_V[seen]
        penalty = params.repetition_penalty
        scores_V[seen] = torch.where(values > 0, values / penalty, values * penalty)
    if row.banned:
        scores_V[list(row.banned)] = _NEG_INF


def _filtered_scores(scores_RV: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    """Temperature, top-k and min-p (greedy rows are divided by 1, and both filters keep the
    best token, so their argmax stays); top-p is applied where tokens are drawn
    (`draw_in_nucleus`, `_nucleus_scores`)."""
    device = scores_RV.device
    temps = torch.tensor([1.0 if s.params.greedy else s.params.temperature for s in seqs],
                         device=device)  # fmt: skip
    scores_RV = scores_RV / temps[:, None]
    top_k = [s.params.top_k for s in seqs]
    if any(top_k):
        scores_RV = apply_top_k(scores_RV, torch.tensor(top_k, device=device))
    min_p = [s.params.min_p for s in seqs]
    if any(min_p):
        scores_RV = apply_min_p(scores_RV, torch.tensor(min_p, device=device))
    return scores_RV


def apply_top_k(scores_RV: torch.Tensor, k_R: torch.Tensor) -> torch.Tensor:
    """Set all but each row's k highest scores to -inf (k = 0 keeps the row unchanged)."""
    vocab = scores_RV.shape[1]
    k_R = torch.where(k_R <= 0, vocab, k_R.clamp(max=vocab))
    best_RK = scores_RV.topk(int(k_R.max()), dim=1).values
    kth_R = best_RK.gather(1, (k_R - 1)[:, None])
    return scores_RV.masked_fill(scores_RV < kth_R, _NEG_INF)


def apply_min_p(scores_RV: torch.Tensor, p_R: torch.Tensor) -> torch.Tensor:
    """Set every token less likely than p times the row's best to -inf (p = 0: unchanged).

    In log space: p_token >= p * p_best  <=>  score >= best_score + log p, with no softmax.
    """
    floor_R1 = scores_RV.amax(dim=1, keepdim=True) + p_R.to(scores_RV.dtype).log()[:, None]
    return scores_RV.masked_fill(scores_RV < floor_R1, _NEG_INF)


def _logprobs(
    logits_RV: torch.Tensor, tokens: list[int], top: list[int | None]
) -> list[TokenLogprob]:
    """Logprobs of the raw model distribution, as OpenAI reports them."""
    if not any(k is not None for k in top):
        return [TokenLogprob(t, 0.0) for t in tokens]
    logp_RV = logits_RV.log_softmax(dim=1)
    chosen_R1 = torch.tensor(tokens, device=logits_RV.device)[:, None]
    chosen = logp_RV.gather(1, chosen_R1)[:, 0].tolist()
    width = max(k or 0 for k in top)
    best_val, best_idx = logp_RV.topk(width, dim=1) if width else (None, None)
    out = []
    for r, (token, k) in enumerate(zip(tokens, top, strict=True)):
        alts = []
        if k and best_val is not None and best_idx is not None:
            alts = list(zip(best_idx[r, :k].tolist(), best_val[r, :k].tolist(), strict=True))
        out.append(TokenLogprob(token, chosen[r], alts))
    return out
