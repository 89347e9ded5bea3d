"""A tiny random transformers 5.23 `Kimi_K25ForConditionalGeneration`, saved to disk.

Every tensor (norm gains and biases too) is random so that a wrong layout cannot hide behind
ones and zeros. The text part reuses `tests/model/hf_oracle.random_hf_model` (debug preset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hf_oracle import random_hf_model
from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration

from openk2.model import get_preset

PAD_ID = 500
"""The media placeholder id of the tiny vocabulary (512 tokens)."""
HF_VISION = {
    "num_hidden_layers": 2,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 2,  # head dim 16: 4 (w, h) frequency pairs
    "pos_emb_height": 6,
    "pos_emb_width": 6,  # transformers supports square grids only
    "rope_parameters": {"rope_type": "axial", "rope_theta": 10000.0},
}


@torch.no_grad()
def saved_hf_model(
    path: Path, seed: int = 0, vision: dict[str, Any] | None = None, attn: str = "eager"
) -> Kimi_K25ForConditionalGeneration:
    """Build, randomise and `save_pretrained` a fp32 HF Kimi K2.5 model into `path` (debug
    text model; `vision` overrides `HF_VISION`; `attn` is transformers' attention backend)."""
    text = random_hf_model(get_preset("debug"), seed=seed)
    vision = HF_VISION | (vision or {})
    config = Kimi_K25Config(
        text_config=text.config.to_dict() | {"dtype": "float32"},
        vision_config=vision,
        projection_hidden_size=vision["hidden_size"],
        tie_word_embeddings=False,
        image_token_id=PAD_ID,
    )
    config._attn_implementation = attn
    model = Kimi_K25ForConditionalGeneration(config).eval()
    model.model.language_model.load_state_dict(text.model.state_dict())
    model.lm_head.load_state_dict(text.lm_head.state_dict())
    generator = torch.Generator().manual_seed(seed + 7)
    for name, tensor in model.state_dict().items():
        if "vision_tower" in name or "mm_projector" in name:
            if name.endswith("time_position_embeddings"):
                continue
            scale = 0.3 if "pos_emb" in name else 0.1
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            tensor.copy_(base + scale * torch.randn(tensor.shape, generator=generator))
    model.save_pretrained(path)
    return model
