"""Checkpoint name layouts and quantized tensors, read back by `load_state_dict` (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from openk2.model.quant.fp8 import fp8_quantization_config, quantize_fp8_block
from openk2.model.quant.int4 import dequantize_int4, int4_quantization_config, quantize_int4
from openk2.model.safetensors_io import CheckpointError
from openk2.model.safetensors_writer import ShardedWriter
from openk2.model.weights import load_state_dict, model_name

HIDDEN, EXPERTS, INTER = 64, 4, 32


def _k2_state_dict() -> dict[str, torch.Tensor]:
    """A hand-made two-layer K2-named state dict (layer 0 dense, layer 1 MoE)."""
    torch.manual_seed(0)
    sd = {
        "model.embed_tokens.weight": torch.randn(100, HIDDEN),
        "model.norm.weight": torch.ones(HIDDEN),
    }
    sd["lm_head.weight"] = torch.randn(100, HIDDEN)
    sd["model.layers.0.mlp.gate_proj.weight"] = torch.randn(96, HIDDEN)
    sd["model.layers.0.self_attn.q_a_proj.weight"] = torch.randn(32, HIDDEN)
    sd["model.layers.1.mlp.gate.weight"] = torch.randn(EXPERTS, HIDDEN)
    sd["model.layers.1.mlp.gate.e_score_correction_bias"] = torch.randn(EXPERTS)
    for e in range(EXPERTS):
        for proj, shape in (
            ("gate", (INTER, HIDDEN)),
            ("up", (INTER, HIDDEN)),
            ("down", (HIDDEN, INTER)),
        ):
            sd[f"model.layers.1.mlp.experts.{e}.{proj}_proj.weight"] = torch.randn(shape)
    return sd


def _save(out: Path, tensors: dict[str, torch.Tensor], config: dict | None = None) -> Path:
    with ShardedWriter(out, max_shard_size=20_000) as writer:
        for name, tensor in tensors.items():
            writer.add(name, tensor)
    if config is not None:
        (out / "config.json").write_text(json.dumps(config))
    return out


def test_k2_names_are_the_model_names(tmp_path: Path) -> None:
    sd = _k2_state_dict()
    loaded = load_state_dict(_save(tmp_path, sd))
    assert list(loaded) == list(sd)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_k25_prefix_and_vision_tensors_are_skipped_explicitly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sd = _k2_state_dict()
    k25 = {"language_model." + k: v for k, v in sd.items()}
    k25["vision_tower.encoder.blocks.0.wqkv.weight"] = torch.randn(12, 4)
    k25["mm_projector.proj.0.weight"] = torch.randn(4, 4)
    with caplog.at_level("INFO", logger="openk2.model.weights"):
        loaded = load_state_dict(_save(tmp_path, k25))
    assert set(loaded) == set(sd)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)
    assert "skipped 2 vision tensors" in caplog.text


def test_rename_table() -> None:
    assert (
        model_name("language_model.model.layers.3.mlp.gate.weight")
        == "model.layers.3.mlp.gate.weight"
    )
    assert model_name("language_model.lm_head.weight") == "lm_head.weight"
    assert model_name("language_model.model.blocks.7.input_layernorm.weight") == (
        "model.layers.7.input_layernorm.weight"
    )  # what transformers 5.23 Kimi_K25 save_pretrained writes
    assert model_name("model.language_model.norm.weight") == "model.norm.weight"
    assert model_name("vision_tower.patch_embed.pos_emb.weight") is None
    assert model_name("model.mm_projector.pre_norm.weight") is None
    assert model_name("model.layers.0.mlp.up_proj.weight") == "model.layers.0.mlp.up_proj.weight"


def test_fused_experts_are_split_per_expert(tmp_path: Path) -> None:
    sd = _k2_state_dict()
    fused = {k: v for k, v in sd.items() if ".experts." not in k}
    p = "model.layers.1.mlp.experts"
    fused[f"{p}.gate_up_proj"] = torch.stack(
        [
            torch.cat([sd[f"{p}.{e}.gate_proj.weight"], sd[f"{p}.{e}.up_proj.weight"]])
            for e in range(EXPERTS)
        ]
    )
    fused[f"{p}.down_proj"] = torch.stack([sd[f"{p}.{e}.down_proj.weight"] for e in range(EXPERTS)])
    loaded = load_state_dict(_save(tmp_path, fused))
    assert set(loaded) == set(sd)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)


def test_int4_experts_are_dequantized(tmp_path: Path) -> None:
    sd = {k: v.to(torch.bfloat16) for k, v in _k2_state_dict().items()}
    stored: dict[str, torch.Tensor] = {}
    for name, tensor in sd.items():
        if ".experts." in name:
            q = quantize_int4(tensor)
            base = name.removesuffix(".weight")
            stored |= {
                f"{base}.weight_packed": q.weight_packed,
                f"{base}.weight_scale": q.weight_scale,
            }
            stored[f"{base}.weight_shape"] = q.weight_shape
        else:
            stored[name] = tensor
    out = _save(tmp_path, stored, {"quantization_config": int4_quantization_config()})
    loaded = load_state_dict(out)
    assert set(loaded) == set(sd)
    name = "model.layers.1.mlp.experts.2.down_proj.weight"
    base = name.removesuffix(".weight")
    expected = dequantize_int4(
        stored[f"{base}.weight_packed"], stored[f"{base}.weight_scale"], (HIDDEN, INTER)
    )
    assert loaded[name].dtype == torch.bfloat16 and torch.equal(loaded[name], expected)
    assert (loaded[name].float() - sd[name].float()).abs().max() < 0.2 * sd[
        name
    ].float().abs().max()
    assert load_state_dict(out, dtype=torch.float32)[name].dtype == torch.float32


def test_fp8_weights_are_dequantized(tmp_path: Path) -> None:
    sd = _k2_state_dict()
    stored = dict(sd)
    name = "model.layers.0.mlp.gate_proj.weight"
    stored[name], stored[name + "_scale_inv"] = quantize_fp8_block(sd[name], block=(128, 128))
    loaded = load_state_dict(
        _save(tmp_path, stored, {"quantization_config": fp8_quantization_config()})
    )
    assert loaded[name].dtype == torch.bfloat16
    assert (loaded[name].float() - sd[name]).abs().max() <= sd[name].abs().max() / 16


def test_two_names_for_one_tensor_is_an_error(tmp_path: Path) -> None:
    sd = _k2_state_dict()
    sd["language_model.model.norm.weight"] = torch.ones(HIDDEN)
    with pytest.raises(CheckpointError, match="both map to model tensor 'model.norm.weight'"):
        load_state_dict(_save(tmp_path, sd))


def test_incomplete_int4_weight_names_the_missing_part(tmp_path: Path) -> None:
    q = quantize_int4(torch.randn(8, 32))
    stored = {"x.weight_packed": q.weight_packed, "x.weight_scale": q.weight_scale}
    with pytest.raises(CheckpointError, match=r"x\.weight_shape missing"):
        load_state_dict(_save(tmp_path, stored))


def test_asymmetric_int4_is_refused(tmp_path: Path) -> None:
    q = quantize_int4(torch.randn(8, 32))
    stored = {
        "x.weight_packed": q.weight_packed,
        "x.weight_zero_point": torch.zeros(1, 8, dtype=torch.int32),
    }
    with pytest.raises(CheckpointError, match="unsupported quantization tensor") as info:
        load_state_dict(_save(tmp_path, stored))
    assert info.value.tensor == "x.weight_zero_point"


def test_unsupported_quantization_config_names_config_json(tmp_path: Path) -> None:
    config = {"quantization_config": {"quant_method": "gptq"}}
    with pytest.raises(CheckpointError, match="unsupported quantization_config") as info:
        load_state_dict(_save(tmp_path, _k2_state_dict(), config))
    assert str(info.value.file).endswith("config.json")
