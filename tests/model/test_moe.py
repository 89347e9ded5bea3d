"""Router selection/weighting rules and the two expert execution paths."""

from __future__ import annotations

import pytest
import torch

from openk2.model import build_model, get_preset
from openk2.model.config import ModelConfig
from openk2.model.layers.moe import MoE, MoEGate


def _moe(config: ModelConfig, seed: int = 0) -> MoE:
    model = build_model(config.replace(initializer_range=0.1), seed=seed)
    moe = model.model.layers[config.first_k_dense_replace].mlp
    assert isinstance(moe, MoE)
    return moe


def _dense_reference(moe: MoE, x_ND: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, weighted by a dense [N, E] routing matrix."""
    weights_NK, ids_NK = moe.gate(x_ND)
    dense_NE = torch.zeros(x_ND.shape[0], len(moe.experts)).scatter(1, ids_NK, weights_NK)
    outputs_NED = torch.stack([expert(x_ND) for expert in moe.experts], dim=1)
    shared = moe.shared_experts(x_ND) if moe.shared_experts is not None else 0
    return (dense_NE.unsqueeze(-1) * outputs_NED).sum(1) + shared


def test_bias_changes_selection_but_not_weights() -> None:
    config = get_preset("debug")
    gate = MoEGate(config)
    gate.weight.data = torch.randn(8, 64)
    gate.e_score_correction_bias.zero_()
    x = torch.randn(5, 64)
    _, ids_plain = gate(x)
    gate.e_score_correction_bias[3] = 10.0
    weights, ids = gate(x)
    assert (ids == 3).any(dim=1).all()
    assert not torch.equal(ids.sort().values, ids_plain.sort().values)
    scores = torch.sigmoid(x @ gate.weight.T)
    picked = scores.gather(1, ids)
    expected = picked / picked.sum(-1, keepdim=True) * config.routed_scaling_factor
    assert torch.allclose(weights, expected, atol=1e-6)
    assert weights.dtype == torch.float32


def test_without_norm_topk_prob_weights_are_scaled_scores() -> None:
    config = get_preset("debug").replace(norm_topk_prob=False, routed_scaling_factor=2.0)
    gate = MoEGate(config)
    gate.weight.data = torch.randn(8, 64)
    gate.e_score_correction_bias.zero_()
    x = torch.randn(3, 64)
    weights, ids = gate(x)
    assert torch.allclose(weights, 2.0 * torch.sigmoid(x @ gate.weight.T).gather(1, ids))


def test_group_limited_routing_stays_in_the_best_groups() -> None:
    config = get_preset("debug").replace(
        n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2
    )
    gate = MoEGate(config)
    gate.weight.data = torch.randn(16, 64)
    gate.e_score_correction_bias.normal_(std=0.1)
    x = torch.randn(32, 64)
    _, ids = gate(x)
    choice = torch.sigmoid(x @ gate.weight.T) + gate.e_score_correction_bias
    group_score = choice.view(32, 4, 4).topk(2, dim=-1).values.sum(-1)
    best = group_score.topk(2, dim=-1).indices
    for token in range(32):
        assert set((ids[token] // 4).tolist()) <= set(best[token].tolist())
    ungrouped = MoEGate(config.replace(n_group=1, topk_group=1))
    ungrouped.load_state_dict(gate.state_dict())
    assert not torch.equal(ungrouped(x)[1].sort().values, ids.sort().values)


def test_tokens_per_expert_recorded_only_when_enabled() -> None:
    moe = _moe(get_preset("debug"))
    x = torch.randn(1, 6, 64)
    moe(x)
    assert moe.gate.tokens_per_expert is None
    moe.gate.record_tokens_per_expert = True
    moe(x)
    counts = moe.gate.tokens_per_expert
    assert counts is not None and counts.shape == (8,)
    assert int(counts.sum()) == 6 * 2


def test_bias_is_fp32_buffer_outside_parameters() -> None:
    model = build_model(get_preset("debug")).to(torch.bfloat16)
    gate = model.model.layers[1].mlp.gate
    assert gate.e_score_correction_bias.dtype == torch.float32
    assert gate.weight.dtype == torch.bfloat16
    names = {name for name, _ in model.named_parameters()}
    assert "model.layers.1.mlp.gate.e_score_correction_bias" not in names
    assert "model.layers.1.mlp.gate.e_score_correction_bias" in model.state_dict()


def test_bias_precision_survives_a_bf16_cast() -> None:
    model = build_model(get_preset("debug"))
    gate = model.model.layers[1].mlp.gate
    gate.e_score_correction_bias.fill_(1.0 + 2**-12)
    model.to(torch.bfloat16)
    assert (gate.e_score_correction_bias == 1.0 + 2**-12).all()


@pytest.mark.parametrize("shared", [1, 0])
def test_grouped_and_single_token_paths_match_dense_reference(shared: int) -> None:
    moe = _moe(get_preset("debug").replace(n_shared_experts=shared))
    x = torch.randn(7, 64)
    with torch.no_grad():
        reference = _dense_reference(moe, x)
        batched = moe(x.view(1, 7, 64)).view(7, 64)
        single = torch.cat([moe(x[i].view(1, 1, 64)).view(1, 64) for i in range(7)])
    assert torch.allclose(batched, reference, atol=1e-5)
    assert torch.allclose(single, reference, atol=1e-5)


def test_grouped_path_backpropagates_to_experts_and_router() -> None:
    moe = _moe(get_preset("debug"))
    moe(torch.randn(2, 5, 64)).square().sum().backward()
    assert moe.gate.weight.grad is not None and moe.gate.weight.grad.abs().sum() > 0
    used = [e for e in moe.experts if e.down_proj.weight.grad is not None]
    assert used and all(e.down_proj.weight.grad.abs().sum() > 0 for e in used)
