"""param_groups routes every trainable parameter to exactly one optimizer (or to the hook)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from openk2.train.optim.groups import GroupHyper, check_coverage, param_groups, route
from openk2.train.optim.muon import MuonAdamW


class _Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 8))
        self.e_score_correction_bias = nn.Parameter(torch.zeros(4))


class _Tiny(nn.Module):
    """A K2-named miniature: embeddings, attention, norm, gate with bias, experts, head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(16, 8)
        self.q_b_proj = nn.Linear(8, 12, bias=False)
        self.o_proj = nn.Linear(12, 8, bias=True)
        self.norm = nn.Module()
        self.norm.weight = nn.Parameter(torch.ones(8))
        self.gate = _Gate()
        self.experts = nn.ModuleList(nn.Linear(8, 6, bias=False) for _ in range(3))
        self.lm_head = nn.Linear(8, 16, bias=False)


def _by_name(groups: list[dict]) -> dict[str, str]:
    return {n: g["name"] for g in groups for n in g["names"]}


def test_every_parameter_lands_in_exactly_one_group() -> None:
    model = _Tiny()
    owner = _by_name(param_groups(model))
    assert set(owner) == {n for n, _ in model.named_parameters()} - {"gate.e_score_correction_bias"}
    assert owner["embed_tokens.weight"] == owner["lm_head.weight"] == "adamw_decay"
    assert owner["norm.weight"] == owner["o_proj.bias"] == "adamw_no_decay"
    assert owner["q_b_proj.weight"] == "muon_12x8"
    assert {owner[f"experts.{e}.weight"] for e in range(3)} == {"muon_6x8"}
    assert owner["gate.weight"] == "muon_4x8"


def test_adamw_baseline_and_frozen_parameters() -> None:
    model = _Tiny()
    model.q_b_proj.weight.requires_grad_(False)
    groups = param_groups(model, GroupHyper(use_muon=False, weight_decay=0.3))
    assert not any(g["use_muon"] for g in groups)
    assert "q_b_proj.weight" not in _by_name(groups)
    decay = {g["name"]: g["weight_decay"] for g in groups}
    assert decay == {"adamw_decay": 0.3, "adamw_no_decay": 0.0}


def test_groups_build_a_working_optimizer() -> None:
    model = _Tiny()
    opt = MuonAdamW(param_groups(model))
    model.lm_head(
        model.o_proj(model.q_b_proj(model.embed_tokens(torch.tensor([1, 2]))))
    ).sum().backward()
    before = model.q_b_proj.weight.detach().clone()
    opt.step()
    assert not torch.equal(before, model.q_b_proj.weight)


def test_coverage_check_catches_missing_duplicate_and_hook_params() -> None:
    model = _Tiny()
    groups = param_groups(model)
    with pytest.raises(ValueError, match="in no optimizer group"):
        check_coverage(model, groups[1:])
    dup = [*groups, {"name": "again", "params": groups[0]["params"]}]
    with pytest.raises(ValueError, match="both group"):
        check_coverage(model, dup)
    bias = {"name": "bias", "params": [model.gate.e_score_correction_bias]}
    with pytest.raises(ValueError, match="hook-managed"):
        check_coverage(model, [*groups, bias])


def test_route_rules() -> None:
    assert route("model.layers.3.mlp.gate.e_score_correction_bias", 1) == "hook"
    assert route("model.embed_tokens.weight", 2) == "adamw_decay"
    assert route("model.layers.0.input_layernorm.weight", 1) == "adamw_no_decay"
    assert route("model.layers.1.mlp.experts.7.down_proj.weight", 2) == "muon"
