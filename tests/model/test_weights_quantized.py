"""Models stored with INT4 routed experts or FP8 block weights load back as dequantized models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open

from openk2.model import KimiK2ForCausalLM, build_model, get_preset
from openk2.model.quant.fp8 import dequantize_fp8_block, fp8_quantization_config, quantize_fp8_block
from openk2.model.quant.int4 import dequantize_int4, int4_quantization_config, quantize_int4
from openk2.model.safetensors_io import SINGLE_NAME
from openk2.model.safetensors_writer import ShardedWriter
from openk2.model.weights import load_model, save_model

# The Linear weights K2-Instruct stores in FP8 (DeepSeek-V3 convention): attention projections and
# every dense / shared / routed expert projection; not embeddings, lm_head, norms or the router.
FP8_LINEAR = re.compile(r"(self_attn\.\w+_proj|mlp\.(\w+\.)*(gate|up|down)_proj)\.weight$")


def _logits(model: KimiK2ForCausalLM) -> torch.Tensor:
    ids = torch.randint(
        0, model.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(4)
    )
    with torch.no_grad():
        return model(ids).float()


def _fake_quantized(model: KimiK2ForCausalLM, pattern: re.Pattern[str], codec) -> KimiK2ForCausalLM:  # type: ignore[no-untyped-def]
    """A copy of `model` whose matching weights went through quantize -> dequantize in memory."""
    copy = build_model(model.config, dtype=model.lm_head.weight.dtype, seed=None)
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, tensor in copy.state_dict().items():
            if pattern.search(name):
                tensor.copy_(codec(tensor))
    return copy.eval()


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_int4_experts_round_trip_through_files(tmp_path: Path) -> None:
    model = build_model(get_preset("debug"), dtype=torch.bfloat16, seed=0).eval()
    save_model(model, tmp_path, int4_experts=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantization_config"] == int4_quantization_config()
    name = "model.layers.1.mlp.experts.5.down_proj"
    with safe_open(tmp_path / SINGLE_NAME, "pt") as f:
        assert f"{name}.weight" not in set(f.keys())
        packed, scale = f.get_tensor(f"{name}.weight_packed"), f.get_tensor(f"{name}.weight_scale")
        assert packed.dtype == torch.int32 and packed.shape == (64, 4)
        assert scale.dtype == torch.bfloat16 and scale.shape == (64, 1)
        assert f.get_tensor(f"{name}.weight_shape").tolist() == [64, 32]
        assert (
            f.get_tensor("model.layers.1.mlp.shared_experts.up_proj.weight").dtype == torch.bfloat16
        )

    loaded = load_model(tmp_path)
    expert = re.compile(r"\.experts\.\d+\.")

    def codec(w: torch.Tensor) -> torch.Tensor:
        q = quantize_int4(w)
        return dequantize_int4(q.weight_packed, q.weight_scale, tuple(w.shape), dtype=w.dtype)

    reference = _fake_quantized(model, expert, codec)
    for key, tensor in loaded.state_dict().items():  # experts = codec(w); the rest untouched
        assert torch.equal(tensor, reference.state_dict()[key]), key
    base, quantized = _logits(model), _logits(loaded)
    assert torch.equal(quantized, _logits(reference))
    # Within the quantization error: INT4 perturbs each expert weight by ~9% RMS; the logits of
    # this 3-layer model move by a few percent, far below an unrelated model's 100%+.
    error = _relative_error(quantized, base)
    assert 0 < error < 0.05
    unrelated = build_model(model.config, dtype=torch.bfloat16, seed=1).eval()
    assert _relative_error(_logits(unrelated), base) > 1.0


def test_fp8_block_checkpoint_loads_with_partial_edge_blocks(tmp_path: Path) -> None:
    # hidden 136 and intermediate 200 leave partial 128-blocks on both axes
    config = get_preset("debug").replace(hidden_size=136, intermediate_size=200)
    model = build_model(config, dtype=torch.bfloat16, seed=0).eval()
    with ShardedWriter(tmp_path, max_shard_size="1MB") as writer:
        for name, tensor in model.state_dict().items():
            if FP8_LINEAR.search(name):
                weight8, scale_inv = quantize_fp8_block(tensor)
                writer.add(name, weight8)
                writer.add(f"{name}_scale_inv", scale_inv)
            else:
                writer.add(name, tensor)
    hf = config.to_hf_json() | {"quantization_config": fp8_quantization_config()}
    (tmp_path / "config.json").write_text(json.dumps(hf))

    loaded = load_model(tmp_path)

    def codec(w: torch.Tensor) -> torch.Tensor:
        return dequantize_fp8_block(*quantize_fp8_block(w), dtype=w.dtype)

    reference = _fake_quantized(model, FP8_LINEAR, codec)
    for key, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, reference.state_dict()[key]), key
    assert loaded.get_submodule("model.layers.0.mlp.down_proj").weight.shape == (136, 200)
    # e4m3 keeps 3 mantissa bits (~3% RMS per weight); every Linear is quantized here
    assert 0 < _relative_error(_logits(loaded), _logits(model)) < 0.15
