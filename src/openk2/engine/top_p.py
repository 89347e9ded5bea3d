"""Top-p (nucleus) sampling: draws restricted to each row's nucleus, and the nucleus mask.

The nucleus of a distribution is its smallest top set whose mass reaches p: a token is in it
when the mass of the tokens ranked above it is below p (ties ranked by token id). Drawing does
not build that set: `draw_in_nucleus` samples from the whole distribution and redraws the rows
whose token fell outside (rejection sampling: the kept draws follow the distribution
renormalised over the nucleus, exactly). Checking one drawn token costs two vocabulary passes;
building the mask needs partial sorts (`apply_top_p`), which on CPU cost several times more
for the flat distributions where the nucleus spans most of the vocabulary.

Shape legend: R rows, V vocabulary, K candidates.
"""

from __future__ import annotations

import torch

_NEG_INF = float("-inf")
MAX_REJECTIONS = 8
"""Draws tried per row before it falls back to the exact mask (a draw lands in the nucleus
with probability >= p, so only rows with a small p get there)."""


def draw_in_nucleus(
    scores_RV: torch.Tensor, p_R: torch.Tensor, generators: list[torch.Generator]
) -> list[int]:
    """One token per row from softmax(scores) renormalised over the row's top-p nucleus.

    Every uniform comes from the row's own generator, so a seeded row repeats whatever its
    batch neighbours do (it uses one uniform per try).
    """
    probs_RV = scores_RV.softmax(dim=1)
    cdf_RV = probs_RV.cumsum(dim=1)
    tokens_R = torch.zeros(len(generators), dtype=torch.long, device=scores_RV.device)
    pending = list(range(len(generators)))
    for _ in range(MAX_REJECTIONS):
        rows = torch.tensor(pending, dtype=torch.long, device=scores_RV.device)
        picks_R = inverse_cdf(_take(cdf_RV, rows), [generators[r] for r in pending])
        inside_R = in_nucleus(_take(probs_RV, rows), picks_R, p_R[rows])
        tokens_R[rows[inside_R]] = picks_R[inside_R]
        pending = rows[~inside_R].tolist()
        if not pending:
            return tokens_R.tolist()
    rows = torch.tensor(pending, device=scores_RV.device)
    masked_RV = apply_top_p(scores_RV[rows], p_R[rows])
    last_cdf = masked_RV.softmax(dim=1).cumsum(dim=1)
    tokens_R[rows] = inverse_cdf(last_cdf, [generators[r] for r in pending])
    return tokens_R.tolist()


def inverse_cdf(cdf_RV: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """One categorical draw per row from its running sum of probabilities, one uniform each."""
    # The uniforms come from CPU generators, so a seed means the same draw on any device.
    u_R = torch.cat([torch.rand(1, generator=g) for g in generators]).to(cdf_RV.device)
    picks = torch.searchsorted(cdf_RV, (u_R * cdf_RV[:, -1])[:, None], right=True)
    return picks[:, 0].clamp(max=cdf_RV.shape[1] - 1)


def in_nucleus(probs_RV: torch.Tensor, token_R: torch.Tensor, p_R: torch.Tensor) -> torch.Tensor:
    """[R] bool: whether each row's token lies in its top-p nucleus (p >= 1: always)."""
    q_R1 = probs_RV.gather(1, token_R[:, None])
    above_R = probs_RV.masked_fill(probs_RV <= q_R1, 0.0).sum(dim=1)
    tied_R = (probs_RV == q_R1).sum(dim=1)
    before_R = above_R
    if bool((tied_R > 1).any()):  # equal probabilities: the lower token ids rank first
        ids_V = torch.arange(probs_RV.shape[1], device=probs_RV.device)
        earlier_R = ((probs_RV == q_R1) & (ids_V[None, :] < token_R[:, None])).sum(dim=1)
        before_R = above_R + earlier_R * q_R1[:, 0]
    return (before_R < p_R) | (p_R >= 1.0)


def _take(values_RV: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """values[rows], without a copy when every row is still pending."""
    return values_RV if len(rows) == values_RV.shape[0] else values_RV[rows]


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
    return scores_RV.masked_fill(~_rank_ties_by_id(probs_RV, keep, p_R), _NEG_INF)


def _rank_ties_by_id(probs_RV: torch.Tensor, keep: torch.Tensor, p_R: torch.Tensor) -> torch.Tensor:
    """The mask again, with tokens tied at the boundary probability ranked by token id.

    Partial sorts order equal values arbitrarily; `in_nucleus` ranks them by id, and the
    fallback of `draw_in_nucleus` must agree with it.
    """
    v_R1 = probs_RV.masked_fill(~keep, float("inf")).amin(dim=1, keepdim=True)
    tied = probs_RV == v_R1
    if not bool((tied.sum(dim=1) > 1).any()):
        return keep
    above_R1 = torch.where(probs_RV > v_R1, probs_RV, 0.0).sum(dim=1, keepdim=True)
    before_RV = above_R1 + (tied.cumsum(dim=1) - 1) * v_R1
    return (probs_RV > v_R1) | (tied & (before_RV < p_R[:, None]))


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
