"""quantize_model: int8/int4 QuantLinears in place of the model's linear layers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from openk2.model import KimiK2ForCausalLM, build_model, get_preset, quantize
from openk2.model.generate import generate
from openk2.model.layers.linear import enable_packed_gemms
from openk2.model.layers.quant_linear import QuantLinear
from openk2.model.quant.packed import packed_kernels_available
from openk2.model.quantize import quantize_model, weight_bytes
from openk2.model.weights import load_model, save_model

pytestmark = pytest.mark.skipif(
    not packed_kernels_available(), reason="torch build lacks the packed CPU kernels"
)


@pytest.fixture(scope="module")
def model() -> KimiK2ForCausalLM:
    return build_model(get_preset("debug"), dtype=torch.bfloat16, seed=0).eval()


def _quantized(model: KimiK2ForCausalLM, fmt: str) -> KimiK2ForCausalLM:
    quantized = copy.deepcopy(model)
    quantize_model(quantized, fmt)  # type: ignore[arg-type]
    return quantized


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def _logits(model: KimiK2ForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(ids)


@pytest.mark.parametrize(("fmt", "tolerance"), [("int8", 0.03), ("int4", 0.2)])
def test_quantized_logits_track_the_float_model(
    model: KimiK2ForCausalLM, fmt: str, tolerance: float
) -> None:
    ids = torch.randint(0, model.config.vocab_size, (2, 7))
    reference = _logits(model, ids)
    error = _relative_error(_logits(_quantized(model, fmt), ids), reference)
    assert 0 < error < tolerance


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_every_linear_but_kv_b_is_replaced(model: KimiK2ForCausalLM, fmt: str) -> None:
    """(int4 also leaves layers it cannot pack: the debug preset's kv_a is 40 rows wide.)"""
    quantized = _quantized(model, fmt)
    for name, module in quantized.named_modules():
        if isinstance(module, nn.Linear):
            unpackable = fmt == "int4" and module.out_features % 16 != 0
            assert name.endswith("kv_b_proj") or unpackable, name
    names = [n for n, m in quantized.named_modules() if isinstance(m, QuantLinear)]
    assert "lm_head" in names and any(".experts.0.down_proj" in n for n in names)


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_decode_steps_equal_a_full_forward(model: KimiK2ForCausalLM, fmt: str) -> None:
    """The single-token path (cache, module loop over the chosen experts) and the batch path
    (grouped experts, every row at once) compute the same logits."""
    quantized = _quantized(model, fmt)
    ids = torch.randint(0, model.config.vocab_size, (1, 6))
    full = _logits(quantized, ids)
    cache = quantized.new_cache(1, 6)
    with torch.inference_mode():
        steps = [quantized(ids[:, t : t + 1], cache=cache) for t in range(6)]
    assert _relative_error(torch.cat(steps, dim=1), full) < 0.02


def test_batched_rows_equal_single_rows(model: KimiK2ForCausalLM) -> None:
    quantized = _quantized(model, "int8")
    enable_packed_gemms(quantized)  # the engine's switch: quantized layers are skipped
    ids = torch.randint(0, model.config.vocab_size, (3, 5))
    batched = _logits(quantized, ids)
    rows = torch.cat([_logits(quantized, ids[i : i + 1]) for i in range(3)])
    assert _relative_error(batched, rows) < 0.02


def test_generate_runs_on_a_quantized_model(model: KimiK2ForCausalLM) -> None:
    quantized = _quantized(model, "int4")
    tokens = generate(quantized, [1, 2, 3], max_new_tokens=5, stop_ids=())
    assert len(tokens) == 5


def test_weight_bytes_per_format(model: KimiK2ForCausalLM) -> None:
    experts = "model.layers.1.mlp.experts"
    float_bytes, weights = weight_bytes(model, experts)
    assert float_bytes == 2 * weights
    rows = sum(m.out_features for n, m in model.named_modules() if n.startswith(experts)
               and isinstance(m, nn.Linear))
    int8 = weight_bytes(_quantized(model, "int8"), experts)
    assert int8 == (weights + 2 * rows, weights)  # one bf16 scale per row
    assert weight_bytes(_quantized(model, "int4"), experts) == (weights * 5 // 8, weights)


def test_hooked_layers_stay_float(model: KimiK2ForCausalLM) -> None:
    hooked = copy.deepcopy(model)
    o_proj = hooked.model.layers[0].self_attn.o_proj
    o_proj.register_forward_hook(lambda module, args, out: out)
    quantize_model(hooked, "int8")
    assert hooked.model.layers[0].self_attn.o_proj is o_proj


def test_bad_format_fails_before_touching_the_model(model: KimiK2ForCausalLM) -> None:
    target = copy.deepcopy(model)
    with pytest.raises(ValueError, match="weight format"):
        quantize_model(target, "int3")  # type: ignore[arg-type]
    assert not any(isinstance(m, QuantLinear) for m in target.modules())


def test_int4_checkpoint_loads_packed_without_float_experts(tmp_path: Path) -> None:
    """A K2.6-style checkpoint (INT4 routed experts) runs in INT4: the experts are QuantLinears
    holding the stored codes (no bf16 copy), 0.625 bytes per weight in the kernel's layout, and
    the model computes what the dequantized load computes."""
    model = build_model(get_preset("debug"), dtype=torch.bfloat16, seed=0).eval()
    save_model(model, tmp_path, int4_experts=True)
    packed = load_model(tmp_path, int4="packed")
    experts = packed.model.layers[1].mlp.experts
    assert all(isinstance(m, QuantLinear) for e in experts for m in e.children())
    assert not [n for n, _ in packed.named_parameters() if ".experts." in n]
    expert_bytes, weights = weight_bytes(packed, "model.layers.1.mlp.experts")
    assert expert_bytes / weights == pytest.approx(0.625)
    assert packed.model.layers[1].mlp.shared_experts.down_proj.weight.dtype == torch.bfloat16
    ids = torch.randint(0, model.config.vocab_size, (1, 6))
    reference = _logits(load_model(tmp_path), ids)
    assert _relative_error(_logits(packed, ids), reference) < 0.02


def test_int4_packed_loading_checks_its_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="int4 must be one of"):
        load_model(tmp_path, int4="keep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="CPU only"):
        load_model(tmp_path, int4="packed", device="meta")


def test_fused_gate_up_computes_what_separate_layers_do(
    model: KimiK2ForCausalLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    fused = _quantized(model, "int8")
    mlp = fused.model.layers[1].mlp.experts[0]
    assert isinstance(mlp.gate_up_proj, QuantLinear) and mlp.gate_proj is None
    monkeypatch.setattr(quantize, "fuse_quantized_mlps", lambda module: 0)
    separate = _quantized(model, "int8")
    assert separate.model.layers[1].mlp.experts[0].gate_up_proj is None
    ids = torch.randint(0, model.config.vocab_size, (1, 5))
    assert torch.equal(_logits(fused, ids), _logits(separate, ids))
