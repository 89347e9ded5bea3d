"""Latent-space (absorbed MLA) attention in key blocks with an online softmax.

Why: a prefill chunk of T tokens over a prefix of S cached tokens would otherwise build a
[B, T, H, S] score tensor (the n x n matrix of a one-shot long prompt) or up-project every cached
latent into per-head keys and values. Here the queries are already folded into latent space
(q_lat = W_UK^T q_nope, concatenated with q_pe: C = L + R wide), and the scores of one block of
queries against one block of latents are formed, folded into a running (max, sum, output) triple
and dropped (the flash-attention recurrence). Working memory is one [B, Tq*H, Sk] tile, sized
from a fixed element budget; everything else grows linearly with S (the latents themselves).

Shape legend: B batch, T queries, H heads, S latents, C latent width, L kv_lora_rank (the value
part of a latent), X = Tq*H query rows of one query block, K keys of one key block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_WORKSPACE = 1 << 22
"""Score-tile elements per block pair (16 MiB in fp32); independent of the context length."""


def tile_sizes(batch: int, heads: int, workspace: int) -> tuple[int, int]:
    """(queries, keys) per tile so that batch * queries * heads * keys <= workspace."""
    per_query = max(1, batch * heads)
    queries = max(1, min(256, workspace // (per_query * 256)))
    keys = max(16, workspace // (per_query * queries))
    return queries, keys


def blocked_latent_attention(
    q_BTHC: torch.Tensor,
    latent_BSC: torch.Tensor,
    mask_BTS: torch.Tensor | None,
    *,
    scale: float,
    value_dim: int,
    workspace: int = DEFAULT_WORKSPACE,
    with_max_logit: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax(q k^T * scale) v with keys = latents, values = their first `value_dim` columns.

    Args:
        q_BTHC: absorbed queries.
        latent_BSC: every latent the queries may see.
        mask_BTS: [B|1, T, S] True where query t may attend to slot s; None = causal with the
            T queries last among the S slots.
        with_max_logit: also return the per-head max scaled logit (QK-Clip's statistic); the
            tiles then run in Python, otherwise each block of queries runs as one fused SDPA
            call (MQA: keys = values = the latents, ~2x faster on CPU).
    Returns:
        (out_BTHL in the latent value space, per-head max scaled logit [H] fp32 or None).
    Every query must see at least one slot (as in any softmax attention).
    """
    if not with_max_logit:
        return _fused(q_BTHC, latent_BSC, mask_BTS, scale, value_dim, workspace), None
    batch, new, heads, _ = q_BTHC.shape
    work = torch.promote_types(q_BTHC.dtype, torch.float32)
    q_rows, k_rows = tile_sizes(batch, heads, workspace)
    out = q_BTHC.new_empty(batch, new, heads, value_dim)
    best = torch.full((heads,), float("-inf"), device=q_BTHC.device)
    for start in range(0, new, q_rows):
        stop = min(start + q_rows, new)
        tile_mask = None if mask_BTS is None else mask_BTS[:, start:stop]
        out[:, start:stop], tile_best = _query_block(
            q_BTHC[:, start:stop], latent_BSC, tile_mask, start + latent_BSC.shape[1] - new,
            scale=scale, value_dim=value_dim, key_rows=k_rows, work=work,
        )  # fmt: skip
        best = torch.maximum(best, tile_best)
    return out, best


def _fused(
    q_BTHC: torch.Tensor,
    latent_BSC: torch.Tensor,
    mask_BTS: torch.Tensor | None,
    scale: float,
    value_dim: int,
    workspace: int,
) -> torch.Tensor:
    """Blocks of queries through SDPA over the latents they may see; each block's mask holds
    at most `workspace` entries (SDPA's flash kernel tiles the keys itself)."""
    batch, new, heads, width = q_BTHC.shape
    total = latent_BSC.shape[1]
    rows = max(1, min(new, workspace // total))
    out = q_BTHC.new_empty(batch, new, heads, value_dim)
    for start in range(0, new, rows):
        stop = min(start + rows, new)
        end = total if mask_BTS is not None else total - new + stop
        keys = latent_BSC[:, :end].unsqueeze(1).expand(batch, heads, end, width)
        if mask_BTS is not None:
            allowed = mask_BTS[:, start:stop, :end].unsqueeze(1)
        else:
            first = total - new + start
            allowed = _tile_mask(None, first, stop - start, 0, end, q_BTHC.device)
            allowed = None if allowed is None else allowed.unsqueeze(1)
        block = F.scaled_dot_product_attention(
            q_BTHC[:, start:stop].transpose(1, 2), keys, keys, attn_mask=allowed, scale=scale
        )
        out[:, start:stop] = block[..., :value_dim].transpose(1, 2)
    return out


def _query_block(
    q_BXHC: torch.Tensor,
    latent_BSC: torch.Tensor,
    mask_BXS: torch.Tensor | None,
    first_pos: int,
    *,
    scale: float,
    value_dim: int,
    key_rows: int,
    work: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One block of queries (at positions first_pos.. when causal) over every key block."""
    batch, rows, heads, width = q_BXHC.shape
    q = q_BXHC.reshape(batch, rows * heads, width).to(work)
    running_max = q.new_full((batch, rows * heads), float("-inf"))
    running_sum = q.new_zeros(batch, rows * heads)
    acc = q.new_zeros(batch, rows * heads, value_dim)
    best = torch.full((heads,), float("-inf"), device=q.device)
    end = latent_BSC.shape[1] if mask_BXS is not None else first_pos + rows
    for k_start in range(0, end, key_rows):
        k_stop = min(k_start + key_rows, end)
        allowed = _tile_mask(mask_BXS, first_pos, rows, k_start, k_stop, q.device)
        if allowed is not None and not bool(allowed.any()):
            continue
        keys_BKC = latent_BSC[:, k_start:k_stop].to(work)
        scores = torch.bmm(q, keys_BKC.transpose(1, 2)).mul_(scale)
        if allowed is not None:
            scores = _masked(scores, allowed, heads)
        best = torch.maximum(best, scores.view(batch, rows, heads, -1).amax(dim=(0, 1, 3)).float())
        running_max, running_sum, acc = _fold(
            scores, keys_BKC[..., :value_dim], running_max, running_sum, acc
        )
    out = acc / running_sum.unsqueeze(-1)
    return out.view(batch, rows, heads, value_dim).to(q_BXHC.dtype), best


def _tile_mask(
    mask_BXS: torch.Tensor | None,
    first_pos: int,
    rows: int,
    k_start: int,
    k_stop: int,
    device: torch.device,
) -> torch.Tensor | None:
    """[B|1, X, K] allowed slots of this tile; None when every slot is allowed."""
    if mask_BXS is not None:
        return mask_BXS[:, :, k_start:k_stop]
    if k_stop <= first_pos + 1:
        return None  # every key of the block precedes every query of the block
    positions = torch.arange(first_pos, first_pos + rows, device=device).unsqueeze(1)
    return (torch.arange(k_start, k_stop, device=device) <= positions).unsqueeze(0)


def _masked(scores: torch.Tensor, allowed_BXK: torch.Tensor, heads: int) -> torch.Tensor:
    """Scores [B, X*H, K] with disallowed slots at -inf (the mask is shared by the heads)."""
    batch, rows, keys = scores.shape[0], allowed_BXK.shape[1], scores.shape[2]
    view = scores.view(batch, rows, heads, keys)
    return view.masked_fill_(~allowed_BXK.unsqueeze(2), float("-inf")).view(batch, -1, keys)


def _fold(
    scores: torch.Tensor,
    values_BKL: torch.Tensor,
    running_max: torch.Tensor,
    running_sum: torch.Tensor,
    acc: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Add one key block to the online softmax (rows with nothing allowed yet stay empty)."""
    new_max = torch.maximum(running_max, scores.amax(dim=-1))
    safe_max = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)
    probs = torch.exp(scores - safe_max.unsqueeze(-1))
    rescale = torch.exp(running_max - safe_max)
    running_sum = running_sum * rescale + probs.sum(dim=-1)
    acc = acc * rescale.unsqueeze(-1) + torch.bmm(probs, values_BKL)
    return new_max, running_sum, acc
