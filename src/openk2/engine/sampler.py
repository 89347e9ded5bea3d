"""Batched token selection: temperature, top-k, top-p, seeds, bans, guides and logprobs.

Every random draw comes from the sequence's own generator, so a seeded sequence repeats exactly
whatever else is in the batch. Free rows sample by inverse CDF (one uniform per row and token).
Guided rows use the exponential-race form of the Gumbel-max trick, token = argmax(log p - log q)
with q ~ Exp(1): scanning those scores in descending order for the first token the guide accepts
samples exactly from the renormalised allowed distribution, without a vocabulary-wide mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from openk2.engine.sequence import Sequence, TokenLogprob

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
    scores_RV = logits_RV.clone()
    for r, row in enumerate(rows):
        _adjust_row(scores_RV[r], row)
    seqs = [row.seq for row in rows]
    scores_RV = _filtered_scores(scores_RV, seqs)
    tokens = scores_RV.argmax(dim=1).tolist()
    free = [r for r, s in enumerate(seqs) if not s.params.greedy and s.guide is None]
    if free:
        drawn = _inverse_cdf(scores_RV[free], [seqs[r].generator for r in free])
        for r, token in zip(free, drawn, strict=True):
            tokens[r] = token
    for r, seq in enumerate(seqs):
        if seq.guide is not None:
            tokens[r] = _guided(scores_RV[r], seq)
    return _logprobs(logits_RV, tokens, [s.params.logprobs for s in seqs])


def _adjust_row(scores_V: torch.Tensor, row: SampleRow) -> None:
    """Logit bias, presence/frequency penalties over the output so far, then bans (in place)."""
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
    if row.banned:
        scores_V[list(row.banned)] = _NEG_INF


def _filtered_scores(scores_RV: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    """Temperature, top-k and top-p (greedy rows are divided by 1, so their argmax stays)."""
    device = scores_RV.device
    temps = torch.tensor([s.params.temperature or 1.0 for s in seqs], device=device)
    scores_RV = scores_RV / temps[:, None]
    top_k = [s.params.top_k for s in seqs]
    if any(top_k):
        scores_RV = apply_top_k(scores_RV, torch.tensor(top_k, device=device))
    top_p = [s.params.top_p for s in seqs]
    if any(p < 1.0 for p in top_p):
        scores_RV = apply_top_p(scores_RV, torch.tensor(top_p, device=device))
    return scores_RV


def _inverse_cdf(scores_RV: torch.Tensor, generators: list[torch.Generator]) -> list[int]:
    """One categorical draw per row from softmax(scores), using one uniform per generator."""
    cdf_RV = scores_RV.softmax(dim=1).cumsum(dim=1)
    # The uniforms come from CPU generators, so a seed means the same draw on any device.
    u_R = torch.cat([torch.rand(1, generator=g) for g in generators]).to(scores_RV.device)
    picks = torch.searchsorted(cdf_RV, (u_R * cdf_RV[:, -1])[:, None], right=True)
    return picks[:, 0].clamp(max=scores_RV.shape[1] - 1).tolist()


def apply_top_k(scores_RV: torch.Tensor, k_R: torch.Tensor) -> torch.Tensor:
    """Set all but each row's k highest scores to -inf (k = 0 keeps the row unchanged)."""
    vocab = scores_RV.shape[1]
    k_R = torch.where(k_R <= 0, vocab, k_R.clamp(max=vocab))
    best_RK = scores_RV.topk(int(k_R.max()), dim=1).values
    kth_R = best_RK.gather(1, (k_R - 1)[:, None])
    return scores_RV.masked_fill(scores_RV < kth_R, _NEG_INF)


def apply_top_p(
    scores_RV: torch.Tensor, p_R: torch.Tensor, first_k: int = 128, last_k: int = 2048
) -> torch.Tensor:
    """Keep each row's smallest top set whose probability mass reaches p (always the best).

    Full-vocabulary sorts are slow, so two partial top-k's come first. A trained model's nucleus
    is usually a few dozen tokens: the `first_k` best settle it. A flat distribution's nucleus is
    most of the vocabulary, so the excluded tail (mass <= 1 - p) lies in the `last_k` worst.
    Only rows that fit neither pay for a sort.
    """
    probs_RV = scores_RV.softmax(dim=1)
    k = min(first_k, probs_RV.shape[1])
    top_RK, order_RK = probs_RV.topk(k, dim=1)
    keep = _nucleus(probs_RV, top_RK, order_RK, p_R)
    wide = top_RK.sum(dim=1) < p_R
    if bool(wide.any()):
        keep[wide] = _wide_nucleus(probs_RV[wide], p_R[wide], last_k)
    return scores_RV.masked_fill(~keep, _NEG_INF)


def _wide_nucleus(probs_RV: torch.Tensor, p_R: torch.Tensor, last_k: int) -> torch.Tensor:
    """Nucleus mask by excluding the least likely tokens whose total mass stays <= total - p."""
    k = min(last_k, probs_RV.shape[1] - 1)
    low_RK, order_RK = probs_RV.topk(k, dim=1, largest=False)
    tail_RK = low_RK.cumsum(dim=1)
    budget_R = probs_RV.sum(dim=1) - p_R
    keep = torch.ones_like(probs_RV, dtype=torch.bool)
    keep.scatter_(1, order_RK, tail_RK > budget_R[:, None])
    deep = tail_RK[:, -1] <= budget_R  # the tail reaches past the last_k worst: sort
    if bool(deep.any()):
        sorted_RV, order_RV = probs_RV[deep].sort(dim=1, descending=True)
        keep[deep] = _nucleus(probs_RV[deep], sorted_RV, order_RV, p_R[deep])
    return keep


def _nucleus(
    probs_RV: torch.Tensor, probs_RK: torch.Tensor, order_RK: torch.Tensor, p_R: torch.Tensor
) -> torch.Tensor:
    """[R, V] mask of the tokens whose preceding mass (in descending order) is below p."""
    inside_RK = (probs_RK.cumsum(dim=1) - probs_RK) < p_R[:, None]
    inside_RK[:, 0] = True
    return torch.zeros_like(probs_RV, dtype=torch.bool).scatter(1, order_RK, inside_RK)


def _guided(scores_V: torch.Tensor, seq: Sequence) -> int:
    guide = seq.guide
    assert guide is not None
    forced = guide.forced_token()
    if forced is not None:
        return forced
    if not seq.params.greedy:
        noise_V = torch.empty(scores_V.shape[0]).exponential_(generator=seq.generator)
        scores_V = scores_V - noise_V.to(scores_V.device).log()
    return _first_accepted(scores_V, guide.accepts, guide.fallback_token)


def _first_accepted(
    scores_V: torch.Tensor, accepts: Callable[[int], bool], fallback: Callable[[], int]
) -> int:
    """Best-scoring token the guide accepts; the guide's fallback if none in the support does."""
    finite = max(int(torch.isfinite(scores_V).sum()), 1)
    for token_id in scores_V.argsort(descending=True)[:finite].tolist():
        if accepts(token_id):
            return token_id
    return fallback()


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
