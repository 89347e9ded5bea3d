"""Checkpoints written by transformers 5.23 load into openk2 and give the same logits (fp32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_oracle import random_hf_model
from safetensors import safe_open
from transformers import Kimi_K25Config, Kimi_K25ForConditionalGeneration

from openk2.model import ModelConfig, get_preset
from openk2.model.weights import load_model

TOLERANCE = 1e-4


K26_YARN = {
    "type": "yarn",
    "factor": 64.0,
    "original_max_position_embeddings": 4096,
    "beta_fast": 32.0,
    "beta_slow": 1.0,
    "mscale": 1.0,
    "mscale_all_dim": 1.0,
}
CONFIGS = {
    "grouped": {"n_routed_experts": 16, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2},
    "k26_yarn": {
        "qk_rope_head_dim": 64,
        "rope_scaling": K26_YARN,
        "max_position_embeddings": 262144,
    },
}


def _config(name: str = "grouped") -> ModelConfig:
    """debug with group-limited routing, or with K2.6's real YaRN values."""
    return get_preset("debug").replace(**CONFIGS[name])


def _ids(config: ModelConfig) -> torch.Tensor:
    return torch.randint(0, config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(3))


# What transformers 5.23 `save_pretrained` writes for routed experts: per-expert K2 names only
# when the in-memory config's model_type is `deepseek_v3` (its conversion mapping is keyed by
# model_type) and save_original_format is left True; fused [E, 2I, H] / [E, H, I] otherwise,
# e.g. for a config read from a K2 hub file, whose model_type is `kimi_k2`.
SAVE_CASES = {
    "per_expert": ("deepseek_v3", True, False),
    "fused_kimi_k2_model_type": ("kimi_k2", True, True),
    "fused_save_original_format_false": ("deepseek_v3", False, True),
}


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("case", list(SAVE_CASES))
def test_save_pretrained_checkpoint_matches_transformers(
    tmp_path: Path, case: str, config_name: str
) -> None:
    model_type, original_format, expect_fused = SAVE_CASES[case]
    config = _config(config_name)
    hf_model = random_hf_model(config, seed=2)
    hf_model.config.model_type = model_type
    hf_model.save_pretrained(tmp_path, save_original_format=original_format)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:  # what transformers wrote
        fused = "model.layers.1.mlp.experts.gate_up_proj" in set(f.keys())
    assert fused is expect_fused

    model = load_model(tmp_path)
    ids = _ids(config)
    with torch.no_grad():
        expected, actual = hf_model(ids).logits, model(ids)
    assert (actual - expected).abs().max().item() <= TOLERANCE


def test_kimi_k25_save_pretrained_checkpoint_matches_transformers(tmp_path: Path) -> None:
    config = _config()
    hf_text = random_hf_model(config, seed=4)
    vision = {
        "num_hidden_layers": 1,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_attention_heads": 2,
        "pos_emb_height": 4,
        "pos_emb_width": 4,
    }
    k25 = Kimi_K25Config(
        text_config=hf_text.config.to_dict() | {"dtype": "float32"},
        vision_config=vision,
        projection_hidden_size=16,
        tie_word_embeddings=False,
    )
    hf_model = Kimi_K25ForConditionalGeneration(k25).eval()
    hf_model.model.language_model.load_state_dict(hf_text.model.state_dict())
    hf_model.lm_head.load_state_dict(hf_text.lm_head.state_dict())
    hf_model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:  # transformers' K2.5 layout
        names = set(f.keys())
    assert "language_model.lm_head.weight" in names
    assert any(n.startswith("vision_tower.") for n in names)

    model = load_model(tmp_path)
    ids = _ids(config)
    with torch.no_grad():
        expected, actual = hf_model(input_ids=ids).logits, model(ids)
    assert (actual - expected).abs().max().item() <= TOLERANCE
