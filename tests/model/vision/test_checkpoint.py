"""K2.5 / K2.6 multimodal checkpoints: layout, sharding, round trip, counts and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from openk2.model import get_preset
from openk2.model.errors import CheckpointError, ConfigError
from openk2.model.vision import MEDIA_PAD_TOKEN_ID, build_multimodal, get_vision_preset
from openk2.model.vision.checkpoint import (
    load_multimodal,
    save_multimodal,
    vision_config_from_json,
    vision_tensor_name,
)
from openk2.model.vision.config import VisionConfig
from openk2.model.vision.params import projector_params, vision_tower_params
from openk2.model.weights import load_model

TEXT = get_preset("debug")
VISION = get_vision_preset("debug", text_hidden_size=TEXT.hidden_size)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    path = tmp_path_factory.mktemp("mm")
    model = build_multimodal(TEXT, VISION, seed=3)
    save_multimodal(model, path, max_shard_size="200KB")
    return path, model


def test_saved_layout_is_the_hub_layout(saved) -> None:  # noqa: ANN001
    path, _ = saved
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    assert len(set(index.values())) > 2  # sharded
    assert "vision_tower.patch_embed.pos_emb.weight" in index
    assert "vision_tower.encoder.blocks.1.wqkv.weight" in index
    assert "mm_projector.proj.2.bias" in index and "language_model.lm_head.weight" in index
    assert all(n.startswith(("language_model.", "vision_tower.", "mm_projector.")) for n in index)
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "kimi_k25"
    assert config["vision_config"]["vt_hidden_size"] == VISION.vt_hidden_size
    assert config["media_placeholder_token_id"] == MEDIA_PAD_TOKEN_ID


def test_round_trip_keeps_every_tensor_and_output(saved) -> None:  # noqa: ANN001
    path, model = saved
    loaded = load_multimodal(path)
    original, again = model.state_dict(), loaded.state_dict()
    assert original.keys() == again.keys()
    assert all(torch.equal(original[k], again[k]) for k in original)
    pixels, grid = torch.randn(4 * 4 * 2, 3, 14, 14), [(4, 4, 2)]  # a video chunk: time table
    with torch.no_grad():
        assert torch.equal(
            model.media_embeddings(pixels, grid), loaded.media_embeddings(pixels, grid)
        )


def test_load_casts_to_the_requested_dtype(saved) -> None:  # noqa: ANN001
    path, _ = saved
    model = load_multimodal(path, dtype=torch.bfloat16)
    assert model.vision_tower.patch_embed.proj.weight.dtype == torch.bfloat16
    assert model.mm_projector.proj[2].weight.dtype == torch.bfloat16
    with torch.no_grad():
        out = model.media_embeddings(torch.randn(16, 3, 14, 14), [(1, 4, 4)])
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_text_loader_still_reads_the_text_part(saved) -> None:  # noqa: ANN001
    path, model = saved
    text = load_model(path)
    ids = torch.randint(0, 400, (1, 6))
    with torch.no_grad():
        assert (text(ids) - model.language_model(ids)).abs().max().item() <= 1e-6


def test_parameter_counts_match_the_built_model() -> None:
    model = build_multimodal(TEXT, VISION, seed=0)
    tower = sum(p.numel() for p in model.vision_tower.parameters())
    projector = sum(p.numel() for p in model.mm_projector.parameters())
    assert (tower, projector) == (vision_tower_params(VISION), projector_params(VISION))
    real = get_vision_preset("kimi-k2.6")
    assert 400e6 < vision_tower_params(real) < 430e6  # ~400M (SigLIP-SO-400M init)


def test_missing_and_misshapen_vision_tensors_are_named(saved, tmp_path: Path) -> None:  # noqa: ANN001
    path, _ = saved
    for file in path.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shard = tmp_path / index["weight_map"]["mm_projector.proj.2.bias"]
    tensors = load_file(shard)
    tensors["mm_projector.proj.2.bias"] = torch.zeros(3)
    save_file(tensors, shard)
    with pytest.raises(CheckpointError, match=r"mm_projector\.proj\.2\.bias has shape \[3\]"):
        load_multimodal(tmp_path)


def test_vision_config_reads_hub_and_transformers_names() -> None:
    hub = {"vision_config": VisionConfig().to_hf_json(), "text_config": {"hidden_size": 7168}}
    assert vision_config_from_json(hub) == get_vision_preset("kimi-k2.6")
    hf523 = {
        "vision_config": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                          "intermediate_size": 48, "pos_emb_height": 6, "pos_emb_width": 6},
        "text_config": {"hidden_size": 64}, "projection_hidden_size": 32,
    }  # fmt: skip
    config = vision_config_from_json(hf523)
    assert (config.vt_hidden_size, config.init_pos_emb_width, config.text_hidden_size) == (
        32,
        6,
        64,
    )
    with pytest.raises(ConfigError, match="no vision_config"):
        vision_config_from_json({"text_config": {}})
    with pytest.raises(ConfigError, match="merge_type"):
        VisionConfig(merge_type="avgpool")


def test_transformers_prefix_quirks_are_renamed() -> None:
    assert vision_tensor_name("vision_tower.encoder.patch_embed.proj.weight") == (
        "vision_tower.patch_embed.proj.weight"
    )
    assert vision_tensor_name("model.mm_projector.pre_norm.bias") == "mm_projector.pre_norm.bias"
    assert vision_tensor_name("language_model.model.norm.weight") is None
