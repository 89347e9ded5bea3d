"""Next-token sampling from logits: greedy, temperature, top-k and top-p (nucleus).

Batched: every knob may be a Python number (same for all rows) or a [B] tensor (one value per
row), so an engine can mix greedy and sampled requests in one call. Randomness comes only from
the `torch.Generator` passed in, so a seeded generator reproduces a run exactly.

Shape legend: B rows, V vocabulary.
"""

from __future__ import annotations

import torch

Knob = float | int | torch.Tensor


def sample(
    logits_BV: torch.Tensor,
    *,
    temperature: Knob = 0.0,
    top_k: Knob = 0,
    top_p: Knob = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token id per row, returned as int64 [B].

    Args:
        logits_BV: raw logits (any float dtype; computed in fp32).
        temperature: 0 means greedy (argmax) for that row; > 0 divides the logits.
        top_k: keep the k most likely tokens (0 keeps all).
        top_p: keep the smallest set of most likely tokens whose probability reaches p (1 keeps
            all); at least one token always survives.
        generator: source of randomness for the sampled rows.
    """
    if logits_BV.dim() != 2:
        raise ValueError(f"logits must be [B, V], got {list(logits_BV.shape)}")
    rows, device = logits_BV.shape[0], logits_BV.device
    temp_B = _per_row(temperature, rows, device, torch.float32, "temperature")
    top_k_B = _per_row(top_k, rows, device, torch.int64, "top_k")
    top_p_B = _per_row(top_p, rows, device, torch.float32, "top_p")
    _check_ranges(temp_B, top_k_B, top_p_B)
    logits_BV = logits_BV.float()
    greedy_B = logits_BV.argmax(dim=-1)
    sampled = temp_B > 0
    if not bool(sampled.any()):
        return greedy_B
    scaled_BV = logits_BV / torch.where(sampled, temp_B, 1.0).unsqueeze(-1)
    drawn_B = _draw(scaled_BV, top_k_B, top_p_B, generator)
    return torch.where(sampled, drawn_B, greedy_B)


def _per_row(
    value: Knob, rows: int, device: torch.device, dtype: torch.dtype, name: str
) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    if tensor.dim() == 0:
        return tensor.expand(rows)
    if tensor.shape != (rows,):
        raise ValueError(
            f"{name} must be a scalar or have shape [{rows}], got {list(tensor.shape)}"
        )
    return tensor


def _check_ranges(temp_B: torch.Tensor, top_k_B: torch.Tensor, top_p_B: torch.Tensor) -> None:
    if bool((temp_B < 0).any()) or not bool(torch.isfinite(temp_B).all()):
        raise ValueError("temperature must be finite and >= 0")
    if bool((top_k_B < 0).any()):
        raise ValueError("top_k must be >= 0 (0 disables it)")
    if bool(((top_p_B <= 0) | (top_p_B > 1)).any()):
        raise ValueError("top_p must be in (0, 1]")


def _draw(
    scaled_BV: torch.Tensor,
    top_k_B: torch.Tensor,
    top_p_B: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Sample from softmax(scaled) restricted by top-k then top-p."""
    if not bool((top_k_B > 0).any()) and not bool((top_p_B < 1).any()):
        probs_BV = torch.softmax(scaled_BV, dim=-1)
        return torch.multinomial(probs_BV, 1, generator=generator).squeeze(-1)
    sorted_BV, order_BV = scaled_BV.sort(dim=-1, descending=True)
    rank_V = torch.arange(sorted_BV.shape[-1], device=sorted_BV.device)
    beyond_k = (top_k_B > 0).unsqueeze(-1) & (rank_V >= top_k_B.unsqueeze(-1))
    sorted_BV = sorted_BV.masked_fill(beyond_k, float("-inf"))
    probs_BV = torch.softmax(sorted_BV, dim=-1)
    mass_before_BV = probs_BV.cumsum(dim=-1) - probs_BV
    beyond_p = mass_before_BV >= top_p_B.unsqueeze(-1)
    probs_BV = probs_BV.masked_fill(beyond_p, 0.0)
    picked_B1 = torch.multinomial(probs_BV, 1, generator=generator)
    return order_BV.gather(-1, picked_B1).squeeze(-1)
