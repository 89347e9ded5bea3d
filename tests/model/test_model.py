"""Model assembly: checkpoint key contract, meta build, forward contract, incremental decode."""

from __future__ import annotations

import pytest
import torch

from openk2.model import KimiK2ForCausalLM, build_model, get_preset
from openk2.model.config import ModelConfig
from openk2.model.params import total_and_active

TOLERANCE = 1e-4


def _expected_keys(config: ModelConfig) -> set[str]:
    attn = ["kv_a_proj_with_mqa", "kv_a_layernorm", "kv_b_proj", "o_proj"]
    attn += ["q_a_proj", "q_a_layernorm", "q_b_proj"] if config.q_lora_rank else ["q_proj"]
    ffn = ["gate_proj", "up_proj", "down_proj"]
    keys = {"model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"}
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}"
        keys |= {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"}
        keys |= {f"{p}.self_attn.{name}.weight" for name in attn}
        if not config.is_moe_layer(i):
            keys |= {f"{p}.mlp.{name}.weight" for name in ffn}
            continue
        keys |= {f"{p}.mlp.gate.weight", f"{p}.mlp.gate.e_score_correction_bias"}
        keys |= {f"{p}.mlp.shared_experts.{name}.weight" for name in ffn}
        for e in range(config.n_routed_experts):
            keys |= {f"{p}.mlp.experts.{e}.{name}.weight" for name in ffn}
    return keys


@pytest.mark.parametrize("q_lora_rank", [32, None])
def test_state_dict_keys_are_the_hf_checkpoint_keys(q_lora_rank: int | None) -> None:
    config = get_preset("debug").replace(q_lora_rank=q_lora_rank)
    with torch.device("meta"):
        model = KimiK2ForCausalLM(config)
    assert set(model.state_dict()) == _expected_keys(config)


def test_real_dimensions_build_on_the_meta_device() -> None:
    # Two of K2.6's 61 layers (one dense, one MoE) keep this fast; params tests cover all 61.
    config = get_preset("kimi-k2.6").replace(num_hidden_layers=2)
    with torch.device("meta"):
        model = KimiK2ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == total_and_active(config)[0]
    expert = model.model.layers[1].mlp.experts[383].down_proj.weight
    assert expert.shape == (7168, 2048) and expert.is_meta
    assert model.model.layers[1].self_attn.q_b_proj.weight.shape == (64 * 192, 1536)
    assert model.model.layers[0].mlp.gate_proj.weight.shape == (18432, 7168)


def test_init_weights_is_seeded_and_follows_its_docstring() -> None:
    config = get_preset("debug")
    a, b = build_model(config, seed=1), build_model(config, seed=1)
    state_b = b.state_dict()
    assert all(torch.equal(tensor, state_b[name]) for name, tensor in a.state_dict().items())
    assert not torch.equal(a.lm_head.weight, build_model(config, seed=2).lm_head.weight)
    assert torch.equal(a.model.norm.weight, torch.ones(64))
    assert abs(a.lm_head.weight.std().item() - config.initializer_range) < 0.002
    assert not a.model.layers[1].mlp.gate.e_score_correction_bias.any()


def test_logits_to_keep_and_inputs_embeds() -> None:
    model = build_model(get_preset("debug"))
    ids = torch.randint(0, 512, (2, 7))
    with torch.no_grad():
        full = model(ids)
        last = model(ids, logits_to_keep=2)
        embedded = model(None, inputs_embeds=model.model.embed_tokens(ids))
    assert full.shape == (2, 7, 512) and last.shape == (2, 2, 512)
    assert torch.equal(last, full[:, -2:])
    assert torch.equal(embedded, full)


def test_incremental_decode_equals_full_forward() -> None:
    model = build_model(get_preset("debug").replace(initializer_range=0.1), seed=3)
    ids = torch.randint(0, 512, (2, 12))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(2, 16)
        steps = [model(ids[:, :7], cache=cache)]
        steps += [model(ids[:, t : t + 1], cache=cache) for t in range(7, 12)]
    assert (torch.cat(steps, dim=1) - full).abs().max().item() <= TOLERANCE


def test_explicit_positions_matter_only_relatively() -> None:
    model = build_model(get_preset("debug").replace(initializer_range=0.1))
    ids = torch.randint(0, 512, (1, 4))
    with torch.no_grad():
        default = model(ids)
        same = model(ids, torch.arange(4).view(1, 4))
        shifted = model(ids, torch.arange(100, 104).view(1, 4))
        gapped = model(ids, torch.tensor([[0, 1, 2, 9]]))
    assert torch.equal(default, same)
    assert torch.allclose(default, shifted, atol=1e-4)
    assert torch.allclose(default[:, :3], gapped[:, :3], atol=1e-5)
    assert not torch.allclose(default[:, 3], gapped[:, 3], atol=1e-3)


def test_bf16_forward_is_finite_and_close_to_fp32() -> None:
    # All-dense layers: in bf16 a near-tie in the router may legitimately pick another expert.
    config = get_preset("debug").replace(initializer_range=0.1, first_k_dense_replace=3)
    model = build_model(config)
    ids = torch.randint(0, 512, (1, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = model(ids)
        low = model.to(torch.bfloat16)(ids)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float() - reference).abs().max().item() < 0.05 * reference.abs().max().item()


class _LengthlessCache:
    def update(self, layer_idx: int, latent_BTC: torch.Tensor):
        return latent_BTC, None


def test_bad_inputs_raise_clear_errors() -> None:
    model = build_model(get_preset("debug"))
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="exactly one"):
        model(None)
    with pytest.raises(ValueError, match="exactly one"):
        model(ids, inputs_embeds=torch.zeros(1, 3, 64))
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        model(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        model(ids, torch.arange(4).view(1, 4))
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(ids, logits_to_keep=-1)
    with pytest.raises(ValueError, match="positions explicitly"):
        model(ids, cache=_LengthlessCache())
    with pytest.raises(ValueError, match="inputs_embeds"):
        model(None, inputs_embeds=torch.zeros(1, 3, 8))
