"""Token merging and splicing: `sd2_tpool` after the encoder, then the scatter into the text.

`sd2_tpool` turns an item's [t*h*w, D] encoder output into [(h/kh)(w/kw), kh*kw, D]: a mean
over the t frames, then each kh x kw block of patches (inner order row-major) becomes one LM
token. `scatter_media` replaces the `<|media_pad|>` rows of the text embeddings, in order, by
the projector outputs; the vision tokens keep the ordinary 1-D positions of their slots.
"""

from __future__ import annotations

import torch


def sd2_tpool(
    x_PD: torch.Tensor, grid_thw: list[tuple[int, int, int]], kernel: tuple[int, int]
) -> torch.Tensor:
    """[sum of (h/kh)(w/kw), kh*kw, D] merged patches of all items, item after item."""
    kh, kw = kernel
    parts, start = [], 0
    for t, h, w in grid_thw:
        if h % kh or w % kw:
            raise ValueError(f"grid {h}x{w} is not a multiple of the merge kernel {kh}x{kw}")
        item = x_PD[start : start + t * h * w].view(t, h // kh, kh, w // kw, kw, -1)
        pooled = item.mean(dim=0).permute(0, 2, 1, 3, 4)
        parts.append(pooled.reshape((h // kh) * (w // kw), kh * kw, -1))
        start += t * h * w
    return torch.cat(parts)


def media_token_count(grid_thw: tuple[int, int, int], kernel: tuple[int, int]) -> int:
    """LM tokens one item becomes: (h/kh)(w/kw), whatever its frame count."""
    _, h, w = grid_thw
    return (h // kernel[0]) * (w // kernel[1])


def scatter_media(
    embeds_BTD: torch.Tensor, input_ids_BT: torch.Tensor, media_ND: torch.Tensor, pad_id: int
) -> torch.Tensor:
    """A copy of `embeds_BTD` whose `pad_id` rows are the rows of `media_ND`, in order."""
    mask_BT = input_ids_BT == pad_id
    slots = int(mask_BT.sum())
    if slots != media_ND.shape[0]:
        raise ValueError(
            f"the prompt has {slots} media placeholder tokens but the media give "
            f"{media_ND.shape[0]} embeddings"
        )
    out = embeds_BTD.clone()
    out[mask_BT] = media_ND.to(out.dtype)
    return out
