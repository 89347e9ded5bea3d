"""Video chunks (t > 1), where transformers 5.23 fails: MoonViT-3D against the spec's formulas
(k26-model.md §5), re-derived here independently in the style of vLLM's `kimi_k25_vit.py`
(complex-number RoPE table over a 512x512 grid, MAE-style 1-D sin-cos time table)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from openk2.model.vision import MoonViT3d, get_vision_preset
from openk2.model.vision.merge import sd2_tpool
from openk2.model.vision.patch_embed import sincos_time_table

CONFIG = get_vision_preset("debug", init_pos_emb_height=6, init_pos_emb_width=6)


def _tower(seed: int = 0) -> MoonViT3d:
    with torch.device("meta"):
        tower = MoonViT3d(CONFIG)
    tower.to_empty(device="cpu")
    tower.init_weights(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # random norms and biases too, so that no term can hide
        for name, param in tower.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn(param.shape))
    return tower.eval()


def _mae_time_table(frames: int, dim: int) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = torch.arange(frames, dtype=torch.float64)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1)


def _freqs_cis(head_dim: int, side: int = 512) -> torch.Tensor:
    """[side, side, head_dim/2] complex: pair 2k <- x (column) * f_k, pair 2k+1 <- y (row)."""
    flat = torch.arange(side * side)
    x_pos, y_pos = (flat % side).float(), (flat // side).float()
    freqs = 1.0 / 10000 ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim)
    x_cis = torch.polar(torch.ones(side * side, freqs.numel()), torch.outer(x_pos, freqs))
    y_cis = torch.polar(torch.ones(side * side, freqs.numel()), torch.outer(y_pos, freqs))
    return torch.stack([x_cis, y_cis], dim=-1).reshape(side, side, -1)


def _rope(x: torch.Tensor, cis: torch.Tensor) -> torch.Tensor:
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(z * cis[:, None]).flatten(-2)


@torch.no_grad()
def _reference(tower: MoonViT3d, pixels: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
    """The spec's per-item forward for one chunk, written from the formulas."""
    dim, heads = CONFIG.vt_hidden_size, CONFIG.vt_num_attention_heads
    x = F.conv2d(pixels, tower.patch_embed.proj.weight, tower.patch_embed.proj.bias).flatten(1)
    grid = tower.patch_embed.pos_emb.weight.permute(2, 0, 1)[None]
    pos = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)[0]
    pos = pos.permute(1, 2, 0)[None] + (
        _mae_time_table(t, dim).float()[:, None, None] if t > 1 else 0
    )
    x = x + pos.reshape(-1, dim)
    cis = _freqs_cis(dim // heads)[:h, :w].reshape(h * w, -1).repeat(t, 1)  # same for every frame
    for block in tower.encoder.blocks:
        y = F.layer_norm(x, (dim,), block.norm0.weight, block.norm0.bias, 1e-5)
        qkv = F.linear(y, block.wqkv.weight, block.wqkv.bias).view(-1, 3, heads, dim // heads)
        q, k, v = _rope(qkv[:, 0], cis), _rope(qkv[:, 1], cis), qkv[:, 2]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(dim // heads)
        attn = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(-1, dim)
        x = x + F.linear(attn, block.wo.weight, block.wo.bias)
        y = F.layer_norm(x, (dim,), block.norm1.weight, block.norm1.bias, 1e-5)
        y = F.gelu(F.linear(y, block.mlp.fc0.weight, block.mlp.fc0.bias), approximate="tanh")
        x = x + F.linear(y, block.mlp.fc1.weight, block.mlp.fc1.bias)
    final = tower.encoder.final_layernorm
    x = F.layer_norm(x, (dim,), final.weight, final.bias, 1e-5)
    x = x.view(t, h // 2, 2, w // 2, 2, dim).mean(0)  # temporal mean, then 2x2 groups
    return x.permute(0, 2, 1, 3, 4).reshape(-1, 4, dim)


def test_time_table_matches_the_mae_formula() -> None:
    table = sincos_time_table(4, 1152)
    assert torch.allclose(table.double(), _mae_time_table(4, 1152), atol=1e-6)
    assert torch.equal(table[0, :576], torch.zeros(576)) and torch.equal(
        table[0, 576:], torch.ones(576)
    )


def test_video_chunk_matches_the_spec_formulas() -> None:
    tower = _tower()
    for t, h, w in [(4, 4, 6), (2, 8, 8), (3, 10, 4)]:
        pixels = torch.randn(t * h * w, 3, 14, 14)
        expected = _reference(tower, pixels, t, h, w)
        with torch.no_grad():
            actual = tower(pixels, [(t, h, w)])
        assert actual.shape == ((h // 2) * (w // 2), 4, CONFIG.vt_hidden_size)
        assert (actual - expected).abs().max().item() <= 1e-4


def test_image_path_has_no_time_term() -> None:
    tower = _tower()
    pixels = torch.randn(24, 3, 14, 14)
    with torch.no_grad():
        assert (tower(pixels, [(1, 4, 6)]) - _reference(tower, pixels, 1, 4, 6)).abs().max() <= 1e-4


def test_packed_items_do_not_attend_to_each_other() -> None:
    tower = _tower()
    a, b = torch.randn(4 * 24, 3, 14, 14), torch.randn(16, 3, 14, 14)
    with torch.no_grad():
        packed = tower(torch.cat([a, b]), [(4, 4, 6), (1, 4, 4)])
        alone = torch.cat([tower(a, [(4, 4, 6)]), tower(b, [(1, 4, 4)])])
    assert (packed - alone).abs().max().item() <= 1e-5


def test_sd2_tpool_is_a_temporal_mean_of_2x2_groups() -> None:
    x = torch.randn(3 * 4 * 6, 5)
    merged = sd2_tpool(x, [(3, 4, 6)], (2, 2))
    frames = x.view(3, 4, 6, 5)
    # merged token (1, 2) = rows 2..3, columns 4..5, mean over the 3 frames, inner row-major
    expected = frames.mean(0)[2:4, 4:6].reshape(4, 5)
    assert torch.allclose(merged[1 * 3 + 2], expected, atol=1e-6)
