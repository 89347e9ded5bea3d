"""openk2 logits equal transformers 5.23 `DeepseekV3ForCausalLM` on tiny random configs (fp32)."""

from __future__ import annotations

import pytest
import torch
from hf_oracle import hf_config, openk2_from_hf, openk2_to_hf_state_dict, random_hf_model

from openk2.model import ModelConfig, get_preset

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


def _configs() -> dict[str, ModelConfig]:
    debug = get_preset("debug")
    return {
        "plain": debug,
        "grouped": debug.replace(
            n_routed_experts=16, num_experts_per_tok=4, n_group=4, topk_group=2
        ),
        "k26_yarn": debug.replace(
            qk_rope_head_dim=64,
            rope_scaling=dict(K26_YARN),
            max_position_embeddings=262144,
            n_shared_experts=2,
        ),
        "no_q_lora": debug.replace(q_lora_rank=None, first_k_dense_replace=2),
    }


@pytest.mark.parametrize("name", list(_configs()))
def test_logits_match_transformers(name: str) -> None:
    config = _configs()[name]
    hf_model = random_hf_model(config, seed=3)
    model = openk2_from_hf(hf_model, config)
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(0, config.vocab_size, (2, 11), generator=generator)
    positions = torch.arange(11).expand(2, 11) + (5000 if name == "k26_yarn" else 0)
    with torch.no_grad():
        expected = hf_model(ids, position_ids=positions).logits
        actual = model(ids, positions)
    assert actual.shape == expected.shape == (2, 11, config.vocab_size)
    assert (actual - expected).abs().max().item() <= TOLERANCE


def test_incremental_decode_matches_transformers_full_forward() -> None:
    config = _configs()["k26_yarn"]
    hf_model = random_hf_model(config, seed=5)
    model = openk2_from_hf(hf_model, config)
    ids = torch.randint(0, config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = hf_model(ids).logits
        cache = model.new_cache(1, 16)
        steps = [model(ids[:, :5], cache=cache)]
        steps += [model(ids[:, t : t + 1], cache=cache) for t in range(5, 9)]
    assert (torch.cat(steps, dim=1) - expected).abs().max().item() <= TOLERANCE


def test_hf_config_keeps_routing_and_rope_values() -> None:
    config = _configs()["grouped"].replace(rope_scaling=dict(K26_YARN))
    hf = hf_config(config)
    assert (hf.n_group, hf.topk_group, hf.num_experts_per_tok) == (4, 2, 4)
    assert hf.rope_parameters["rope_type"] == "yarn"
    assert hf.rope_parameters["factor"] == 64.0
    assert hf.rope_parameters["rope_theta"] == config.rope_theta
    assert hf.routed_scaling_factor == config.routed_scaling_factor
    assert hf.num_mtp_layers == 0


def test_state_dict_conversion_round_trips() -> None:
    config = _configs()["grouped"]
    hf_model = random_hf_model(config, seed=1)
    model = openk2_from_hf(hf_model, config)
    back = openk2_to_hf_state_dict(model.state_dict())
    reference = hf_model.state_dict()
    assert set(back) == set(reference)
    assert all(torch.equal(back[k], reference[k]) for k in reference)


@pytest.mark.parametrize("interleave", [True, False])
def test_rope_interleave_matches_transformers_both_ways(interleave: bool) -> None:
    """`rope_interleave: false` (transformers' rotate_half) gives transformers' logits too."""
    config = _configs()["k26_yarn"].replace(rope_interleave=interleave)
    hf_model = random_hf_model(config, seed=11)
    assert hf_model.config.rope_interleave is interleave
    model = openk2_from_hf(hf_model, config)
    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(4))
    positions = torch.arange(9).expand(2, 9) + 300
    with torch.no_grad():
        expected = hf_model(ids, position_ids=positions).logits
        actual = model(ids, positions)
        cache = model.new_cache(2, 16)
        steps = [model(ids[:, :5], positions[:, :5], cache=cache)]
        for t in range(5, 9):
            steps.append(model(ids[:, t : t + 1], positions[:, t : t + 1], cache=cache))
    assert (actual - expected).abs().max().item() <= TOLERANCE
    assert (torch.cat(steps, dim=1) - expected).abs().max().item() <= TOLERANCE


def test_rope_interleave_changes_the_logits() -> None:
    """The flag is honoured: the same weights read the other way give different logits."""
    config = _configs()["k26_yarn"]
    hf_model = random_hf_model(config, seed=11)
    ids = torch.randint(0, config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        interleaved = openk2_from_hf(hf_model, config)(ids)
        split = openk2_from_hf(hf_model, config.replace(rope_interleave=False))(ids)
    assert (interleaved - split).abs().max().item() > 100 * TOLERANCE
