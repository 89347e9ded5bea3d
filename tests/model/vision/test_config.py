"""The real K2.6 vision config: hub keys, and the tensor names and shapes of k26-model.md §4.1."""

from __future__ import annotations

import pytest
import torch

from openk2.model import get_preset
from openk2.model.vision import KimiK25ForConditionalGeneration, VisionConfig, get_vision_preset
from openk2.model.vision.checkpoint import vision_config_from_json

HUB_VISION_CONFIG = {  # K2.5 / K2.6 config.json `vision_config` (k26-model.md §5)
    "patch_size": 14, "vt_hidden_size": 1152, "vt_num_hidden_layers": 27,
    "vt_num_attention_heads": 16, "vt_intermediate_size": 4304, "init_pos_emb_height": 64,
    "init_pos_emb_width": 64, "init_pos_emb_time": 4, "pos_emb_type": "divided_fixed",
    "merge_kernel_size": [2, 2], "merge_type": "sd2_tpool", "video_attn_type": "spatial_temporal",
    "mm_projector_type": "patchmerger", "mm_hidden_size": 1152, "projector_hidden_act": "gelu",
    "projector_ln_eps": 1e-5, "text_hidden_size": 7168, "model_type": "moonvit3d",
}  # fmt: skip
SPEC_SHAPES = {
    "vision_tower.patch_embed.proj.weight": (1152, 3, 14, 14),
    "vision_tower.patch_embed.proj.bias": (1152,),
    "vision_tower.patch_embed.pos_emb.weight": (64, 64, 1152),
    "vision_tower.encoder.blocks.26.norm0.weight": (1152,),
    "vision_tower.encoder.blocks.26.norm1.bias": (1152,),
    "vision_tower.encoder.blocks.0.wqkv.weight": (3456, 1152),
    "vision_tower.encoder.blocks.0.wqkv.bias": (3456,),
    "vision_tower.encoder.blocks.0.wo.weight": (1152, 1152),
    "vision_tower.encoder.blocks.0.mlp.fc0.weight": (4304, 1152),
    "vision_tower.encoder.blocks.0.mlp.fc1.weight": (1152, 4304),
    "vision_tower.encoder.final_layernorm.weight": (1152,),
    "mm_projector.pre_norm.weight": (1152,),
    "mm_projector.proj.0.weight": (4608, 4608),
    "mm_projector.proj.0.bias": (4608,),
    "mm_projector.proj.2.weight": (7168, 4608),
    "mm_projector.proj.2.bias": (7168,),
}


def test_hub_vision_config_is_the_kimi_k26_preset() -> None:
    config = vision_config_from_json({"vision_config": HUB_VISION_CONFIG})
    assert config == get_vision_preset("kimi-k2.6")
    assert config.head_dim == 72 and config.merged_size == 4608
    assert VisionConfig.from_hf_json(config.to_hf_json()) == config


def test_real_model_has_the_spec_tensor_names_and_shapes() -> None:
    with torch.device("meta"):
        model = KimiK25ForConditionalGeneration(
            get_preset("kimi-k2.6"), get_vision_preset("kimi-k2.6")
        )
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: shapes[k] for k in SPEC_SHAPES} == SPEC_SHAPES
    vision = [k for k in shapes if k.startswith(("vision_tower.", "mm_projector."))]
    assert len(vision) == 3 + 12 * 27 + 2 + 6  # patch embed, blocks, final norm, projector
    assert "language_model.model.layers.60.mlp.experts.383.down_proj.weight" in shapes


@pytest.mark.parametrize(
    ("field", "value"),
    [("vt_num_attention_heads", 7), ("merge_kernel_size", [2]), ("mm_hidden_size", 64),
     ("pos_emb_type", "learnable")],
)  # fmt: skip
def test_bad_vision_configs_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        get_vision_preset("kimi-k2.6", **{field: value})
