"""Packed (oneDNN) inference GEMMs: same results as the plain modules, only where they apply."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from openk2.model import build_model, enable_packed_gemms, get_preset
from openk2.model.layers.linear import (
    TILE_ROWS,
    PackedGemm,
    packed_gemms_available,
    row_tiles,
    use_packed,
)
from openk2.model.layers.mlp import MLP

pytestmark = pytest.mark.skipif(
    not packed_gemms_available(), reason="this torch build cannot pack weights for oneDNN"
)


def test_packed_gemm_equals_linear_on_the_concatenated_weights() -> None:
    a, b = torch.randn(5, 12), torch.randn(3, 12)
    x = torch.randn(2, 4, 12)
    gemm = PackedGemm()
    out = gemm(x, a, b)
    assert out.shape == (2, 4, 8)
    torch.testing.assert_close(out, F.linear(x, torch.cat([a, b])), rtol=1e-5, atol=1e-5)


def test_packed_gemm_calls_meet_a_bounded_set_of_row_counts() -> None:
    """oneDNN keeps buffers per input shape for good: any row count maps onto 9 shapes."""
    seen = {padded for rows in range(1, 3 * TILE_ROWS) for _, _, padded in row_tiles(rows)}
    assert seen == {1 << k for k in range(TILE_ROWS.bit_length())}
    tiles = row_tiles(2 * TILE_ROWS + 3)
    assert [(a, b) for a, b, _ in tiles] == [(0, 256), (256, 512), (512, 515)]


@pytest.mark.parametrize("rows", [3, TILE_ROWS, TILE_ROWS + 1, 2 * TILE_ROWS + 77])
def test_tiled_packed_gemm_equals_linear_for_any_row_count(rows: int) -> None:
    w, x = torch.randn(10, 16), torch.randn(rows, 16)
    torch.testing.assert_close(PackedGemm()(x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)


def test_packed_gemm_repacks_when_a_weight_changes_in_place() -> None:
    w = torch.randn(6, 4)
    x = torch.randn(3, 4)
    gemm = PackedGemm()
    gemm(x, w)
    w.mul_(-2.0)
    torch.testing.assert_close(gemm(x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)
    gemm.clear()
    torch.testing.assert_close(gemm(x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)


def test_packed_path_only_without_autograd_and_for_several_rows() -> None:
    w = torch.randn(4, 8)
    rows = torch.randn(3, 8)
    with torch.no_grad():
        assert use_packed(True, rows, w)
        assert not use_packed(False, rows, w)
        assert not use_packed(True, rows[:1], w)  # one row: MKL's GEMV is as fast, no copy
        assert not use_packed(True, rows.double(), w)
    assert not use_packed(True, rows, w)  # autograd on


def test_mlp_packed_forward_matches_the_plain_path() -> None:
    mlp = MLP(16, 24)
    for p in mlp.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(5, 16)
    with torch.no_grad():
        plain = mlp(x)
        enable_packed_gemms(mlp)
        with torch.profiler.profile() as prof:
            packed = mlp(x)
    torch.testing.assert_close(packed, plain, rtol=1e-5, atol=1e-5)
    ran = [e.key for e in prof.key_averages() if "linear_pointwise" in e.key]
    assert ran  # the packed path really ran


def test_enabling_packs_eagerly_and_disabling_frees() -> None:
    model = build_model(get_preset("debug"), seed=0)
    gemms = [g for m in model.modules() if hasattr(m, "packed_gemms")
             for g, _ in m.packed_gemm_weights()]  # fmt: skip
    assert enable_packed_gemms(model) > 0
    assert all(g.packed is not None for g in gemms)
    enable_packed_gemms(model, False)
    assert all(g.packed is None for g in gemms)


def test_whole_model_with_packed_gemms_matches_and_copies_cleanly() -> None:
    model = build_model(get_preset("debug").replace(initializer_range=0.1), seed=3).eval()
    ids = torch.randint(0, model.config.vocab_size, (3, 7))
    with torch.inference_mode():
        plain = model(ids)
    assert enable_packed_gemms(model) > 0
    with torch.inference_mode():
        packed = model(ids)
    torch.testing.assert_close(packed, plain, rtol=1e-4, atol=1e-4)
    copied = copy.deepcopy(model)
    with torch.inference_mode():
        torch.testing.assert_close(copied(ids), plain, rtol=1e-4, atol=1e-4)
    with torch.enable_grad():  # training ignores the packs: exactly the plain result
        enable_packed_gemms(model, False)
        reference = model(ids)
        enable_packed_gemms(model)
        assert torch.equal(model(ids), reference)


def test_moe_runs_its_experts_fused_with_packed_gemms_and_matches() -> None:
    config = get_preset("debug").replace(initializer_range=0.1)
    moe = build_model(config, seed=5).model.layers[config.first_k_dense_replace].mlp
    x = torch.randn(4, 6, config.hidden_size)
    with torch.inference_mode():
        plain = moe(x)
        enable_packed_gemms(moe)
        packed = moe(x)
    torch.testing.assert_close(packed, plain, rtol=1e-4, atol=1e-5)


def test_packed_mla_without_q_lora_matches() -> None:
    config = get_preset("debug").replace(initializer_range=0.1, q_lora_rank=None)
    model = build_model(config, seed=4).eval()
    ids = torch.randint(0, config.vocab_size, (2, 5))
    with torch.inference_mode():
        plain = model(ids)
        enable_packed_gemms(model)
        torch.testing.assert_close(model(ids), plain, rtol=1e-4, atol=1e-4)


def test_hooked_projections_skip_the_packs_so_adapters_still_apply() -> None:
    """A forward hook (how LoRA adapts a projection) must never be bypassed by a pack."""
    config = get_preset("debug").replace(initializer_range=0.1)
    model = build_model(config, seed=6).eval()
    ids = torch.randint(0, config.vocab_size, (2, 5))
    enable_packed_gemms(model)
    layer = model.model.layers[0]
    hooked = [layer.mlp.gate_proj, layer.self_attn.o_proj, model.lm_head]
    with torch.inference_mode():
        packed = model(ids)
        handles = [m.register_forward_hook(lambda _m, _i, out: out * 1.5) for m in hooked]
        adapted = model(ids)
        enable_packed_gemms(model, False)
        reference = model(ids)
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(adapted, reference, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(adapted, packed, atol=1e-3)
