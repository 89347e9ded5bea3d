"""Analytic parameter counts of the vision tower and projector (nothing is built).

"Active" follows `openk2.model.params`: what one *text* token reads, and text tokens never read
the vision weights, so it is 0 (every media item reads all of them once). The counts are of
`parameters()` (the fixed time table is a buffer and is left out).
"""

from __future__ import annotations

from openk2.model.params import ComponentCount
from openk2.model.vision.config import VisionConfig


def vision_tower_params(config: VisionConfig) -> int:
    """`vision_tower.*`: patch conv, position grid, blocks and the final LayerNorm."""
    d, ffn, ps = config.vt_hidden_size, config.vt_intermediate_size, config.patch_size
    patch = 3 * ps * ps * d + d
    grid = config.init_pos_emb_height * config.init_pos_emb_width * d
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * ffn + ffn) + (ffn * d + d)
    return patch + grid + config.vt_num_hidden_layers * block + 2 * d


def projector_params(config: VisionConfig) -> int:
    """`mm_projector.*`: pre_norm and the two Linears."""
    merged, text = config.merged_size, config.text_hidden_size
    return 2 * config.mm_hidden_size + merged * merged + merged + merged * text + text


def count_vision_parameters(config: VisionConfig) -> list[ComponentCount]:
    """Rows to add to `openk2.model.params.count_parameters` for a multimodal checkpoint."""
    tower, projector = vision_tower_params(config), projector_params(config)
    return [
        ComponentCount("vision tower (MoonViT-3D)", tower, 0),
        ComponentCount("mm projector", projector, 0),
    ]
