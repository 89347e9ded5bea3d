"""transformers 5.23's native vision names -> the hub's, for `save_original_format=False` files.

transformers keeps the vision tower as `model.vision_tower.layers.{i}.{norm1,norm2,attn.*,mlp.*}`
with separate `q_proj`/`k_proj`/`v_proj` whose q/k rows are permuted from the checkpoint's
interleaved RoPE pairs (2j, 2j+1) to its rotate-half layout (j, j + Dh/2). `vision_sources`
maps every model tensor to the checkpoint tensors it is built from, and `combine` undoes the
split and the permutation. The hub names (and transformers' default `save_pretrained`, up to the
prefix quirks in `checkpoint.VISION_RENAME_RULES`) need neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

_HF = "model.vision_tower."
_BLOCK = r"^model\.vision_tower\.layers\.(\d+)\."
_HUB_BLOCK = r"vision_tower.encoder.blocks.\1."
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^model\.vision_tower\.patch_embed\.pos_emb\.position_embeddings$",
         "vision_tower.patch_embed.pos_emb.weight"),
        (r"^model\.vision_tower\.patch_embed\.", "vision_tower.patch_embed."),
        (r"^model\.vision_tower\.final_layernorm\.", "vision_tower.encoder.final_layernorm."),
        (_BLOCK + r"norm1\.", _HUB_BLOCK + "norm0."),
        (_BLOCK + r"norm2\.", _HUB_BLOCK + "norm1."),
        (_BLOCK + r"attn\.proj\.", _HUB_BLOCK + "wo."),
        (_BLOCK + r"mlp\.fc1\.", _HUB_BLOCK + "mlp.fc0."),
        (_BLOCK + r"mlp\.fc2\.", _HUB_BLOCK + "mlp.fc1."),
        (r"^model\.mm_projector\.pre_norm\.", "mm_projector.pre_norm."),
        (r"^model\.mm_projector\.in_proj\.", "mm_projector.proj.0."),
        (r"^model\.mm_projector\.out_proj\.", "mm_projector.proj.2."),
    )
)  # fmt: skip
_QKV = re.compile(r"^model\.vision_tower\.layers\.(\d+)\.attn\.([qkv])_proj\.(weight|bias)$")


def vision_sources(names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Model tensor -> its checkpoint tensors (one, or q/k/v for a fused `wqkv`)."""
    out: dict[str, tuple[str, ...]] = {}
    for name in names:
        match = _QKV.match(name)
        if match is not None:
            layer, _, leaf = match.groups()
            parts = tuple(f"{_HF}layers.{layer}.attn.{p}_proj.{leaf}" for p in "qkv")
            out[f"vision_tower.encoder.blocks.{layer}.wqkv.{leaf}"] = parts
            continue
        for pattern, replacement in _RENAMES:
            if pattern.match(name):
                out[pattern.sub(replacement, name, count=1)] = (name,)
                break
    return out


def combine(parts: list[torch.Tensor], head_dim: int) -> torch.Tensor:
    """One tensor as is; q, k, v rows re-interleaved (q and k) and stacked into `wqkv`."""
    if len(parts) == 1:
        return parts[0]
    q, k, v = parts
    return torch.cat([interleave_rope_rows(q, head_dim), interleave_rope_rows(k, head_dim), v])


def interleave_rope_rows(rows: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Per head, rotate-half rows (j, j + Dh/2) back to adjacent pairs (2j, 2j + 1)."""
    heads = rows.view(-1, 2, head_dim // 2, *rows.shape[1:])  # [H, half, Dh/2, ...]
    return heads.transpose(1, 2).reshape(rows.shape)
