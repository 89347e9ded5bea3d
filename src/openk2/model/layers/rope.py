"""Rotary position embedding with DeepSeek's YaRN extension, rotating interleaved pairs.

Elements (2i, 2i+1) of a rope vector form one complex pair rotated by angle p * inv_freq[i]; the
pairs stay in place (complex-multiplication layout). Never use the NeoX half-split on raw K2
weights; a config with `rope_interleave: false` asks for exactly that split (pairs (i, i+R/2)),
and `apply_rope` reads such pairs, writing them out interleaved. Dot products, hence attention,
do not depend on the output layout; the latent cache stores k_pe in the interleaved layout.

YaRN (DeepSeek formula) blends interpolated and extrapolated frequencies with a linear ramp over
the dimensions between the beta_fast and beta_slow correction dims, and sharpens the softmax by
mscale^2 (`softmax_scale`). Shape legend: B batch, T tokens, R rope dims, P = R / 2 pairs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from openk2.model.config import ModelConfig


def yarn_get_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN magnitude correction 0.1 * mscale * ln(scale) + 1 (1 when not extending)."""
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def _yarn(config: ModelConfig) -> dict[str, Any] | None:
    scaling = config.rope_scaling
    return scaling if scaling is not None and scaling["type"] == "yarn" else None


def softmax_scale(config: ModelConfig) -> float:
    """Attention logit scale qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 under YaRN."""
    scale = config.qk_head_dim**-0.5
    yarn = _yarn(config)
    if yarn is not None and yarn.get("mscale_all_dim", 0):
        m = yarn_get_mscale(yarn["factor"], yarn["mscale_all_dim"])
        scale *= m * m
    return scale


def rope_attention_factor(config: ModelConfig) -> float:
    """Multiplier on cos/sin: mscale(f, mscale) / mscale(f, mscale_all_dim) (1.0 for K2)."""
    yarn = _yarn(config)
    if yarn is None:
        return 1.0
    factor = yarn["factor"]
    return yarn_get_mscale(factor, yarn.get("mscale", 1.0)) / yarn_get_mscale(
        factor, yarn.get("mscale_all_dim", 0.0)
    )


def _correction_dim(rotations: float, dim: int, base: float, max_pos: int) -> float:
    """Dimension whose wavelength completes `rotations` turns over `max_pos` tokens."""
    return dim * math.log(max_pos / (rotations * 2 * math.pi)) / (2 * math.log(base))


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """[P] fp32 inverse frequencies on the CPU, YaRN-blended when configured."""
    dim, base = config.qk_rope_head_dim, config.rope_theta
    idx = torch.arange(0, dim, 2, dtype=torch.float32, device="cpu")
    extra = 1.0 / (base ** (idx / dim))
    yarn = _yarn(config)
    if yarn is None:
        return extra
    original = yarn["original_max_position_embeddings"]
    low = _correction_dim(yarn.get("beta_fast") or 32, dim, base, original)
    high = _correction_dim(yarn.get("beta_slow") or 1, dim, base, original)
    if yarn.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = (torch.arange(dim // 2, dtype=torch.float32, device="cpu") - low) / (high - low)
    ramp = ramp.clamp(0, 1)
    return extra / yarn["factor"] * ramp + extra * (1 - ramp)


class RotaryEmbedding(nn.Module):
    """Turns positions into unit rotations (complex64) shared by every layer of one forward."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        # A plain attribute, not a buffer: it is recomputed from the config, so a model built
        # on the meta device or loaded from a checkpoint never holds stale frequencies.
        self.inv_freq_P = rope_inv_freq(config)
        self.attention_factor = rope_attention_factor(config)

    def forward(self, positions_BT: torch.Tensor) -> torch.Tensor:
        """complex64 [B, T, P]: attention_factor * (cos + i sin) of each pair's angle."""
        if self.inv_freq_P.device != positions_BT.device:
            self.inv_freq_P = self.inv_freq_P.to(positions_BT.device)
        angles_BTP = positions_BT.unsqueeze(-1).float() * self.inv_freq_P
        return torch.polar(torch.full_like(angles_BTP, self.attention_factor), angles_BTP)


def apply_rope(x: torch.Tensor, rotation: torch.Tensor, interleaved: bool = True) -> torch.Tensor:
    """Rotate the pairs of x [..., R] in fp32 (fp64 for fp64 x) by complex `rotation` [..., P].

    Interleaved (K2 weights): pair i is x[2i] + i x[2i+1]. Not interleaved (`rope_interleave:
    false`, transformers' `rotate_half`): pair i is x[i] + i x[i + P]. Rotating a pair is a
    complex multiplication, (a cos - b sin, b cos + a sin). The output is always in the
    interleaved layout: queries and keys share it, so their dot products are unchanged.
    """
    # fp64 inputs rotate in fp64: fp32 complex products round differently in vectorised and
    # scalar-tail kernels, which an fp64 chunked-vs-one-shot check would see.
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    x32 = x if x.dtype == work else x.to(work)
    if work == torch.float64:
        rotation = rotation.to(torch.complex128)
    if interleaved:
        pairs = x32.unflatten(-1, (-1, 2))
    else:
        pairs = x32.unflatten(-1, (2, -1)).transpose(-1, -2)
    if pairs.stride(-1) != 1 or pairs.storage_offset() % 2 or any(
        s % 2 for s in pairs.stride()[:-1]
    ):
        pairs = pairs.contiguous()
    rotated = torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2)
    return rotated if x.dtype == work else rotated.to(x.dtype)
