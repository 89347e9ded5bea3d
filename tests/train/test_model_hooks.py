"""Training hooks on the real debug model: QK-Clip, router balancing, grouping, LoRA merge."""

from __future__ import annotations

import pytest
import torch

from openk2.model.config import get_preset
from openk2.model.model import build_model
from openk2.train import hooks
from openk2.train.lora import apply_lora, merge_lora
from openk2.train.optim.groups import param_groups


@pytest.fixture
def model() -> torch.nn.Module:
    return build_model(get_preset("debug"), seed=0)


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 512, (2, 24), generator=torch.Generator().manual_seed(seed))


def _records(model: torch.nn.Module, ids: torch.Tensor) -> hooks.StepRecords:
    records = hooks.StepRecords()
    with torch.no_grad():
        model(ids)
    records.collect(model)
    return records


def test_qk_clip_lowers_a_forced_large_logit_and_leaves_other_heads(model: torch.nn.Module) -> None:
    hooks.enable_recording(model, logits=True, load=False)
    attn = model.model.layers[1].self_attn
    rows = attn.nope_dim + attn.rope_dim
    with torch.no_grad():
        attn.q_b_proj.weight[rows : 2 * rows] *= 300.0  # head 1 of layer 1
    before = _records(model, _ids()).max_logit_H
    tau = float(before[1][1]) / 4
    others = [float(h) for i, b in before.items() for j, h in enumerate(b) if (i, j) != (1, 1)]
    assert max(others) < tau
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}
    report = hooks.qk_clip(model, _records(model, _ids()), tau)
    assert report.clipped_heads == 1 and report.max_logit == pytest.approx(float(before[1][1]))
    after = _records(model, _ids()).max_logit_H
    assert float(after[1][1]) == pytest.approx(tau, rel=1e-4)
    # Layers up to the clipped one see the same inputs, so their other heads keep their logits.
    for layer in (0, 1):
        for h in range(before[layer].numel()):
            if (layer, h) != (1, 1):
                assert float(after[layer][h]) == pytest.approx(float(before[layer][h]), rel=1e-5)
    q_w = model.state_dict()["model.layers.1.self_attn.q_b_proj.weight"]
    kv_w = model.state_dict()["model.layers.1.self_attn.kv_b_proj.weight"]
    q_old = weights_before["model.layers.1.self_attn.q_b_proj.weight"]
    kv_old = weights_before["model.layers.1.self_attn.kv_b_proj.weight"]
    kv_rows = attn.nope_dim + attn.v_dim
    for h in (0, 2, 3):
        assert torch.equal(q_w[h * rows : (h + 1) * rows], q_old[h * rows : (h + 1) * rows])
        assert torch.equal(
            kv_w[h * kv_rows : (h + 1) * kv_rows], kv_old[h * kv_rows : (h + 1) * kv_rows]
        )
    v_rows = slice(kv_rows + attn.nope_dim, 2 * kv_rows)
    assert torch.equal(kv_w[v_rows], kv_old[v_rows])  # head 1's V rows
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, weights_before[k])]
    assert changed == ["model.layers.1.self_attn.q_b_proj.weight",
                       "model.layers.1.self_attn.kv_b_proj.weight"]  # fmt: skip


def test_records_merge_over_micro_batches_and_drive_router_bias(model: torch.nn.Module) -> None:
    hooks.enable_recording(model, logits=True, load=True)
    records = hooks.StepRecords()
    single = []
    for seed in (1, 2):
        with torch.no_grad():
            model(_ids(seed))
        single.append(_records(model, _ids(seed)))
        with torch.no_grad():
            model(_ids(seed))
        records.collect(model)
    for i, peak in records.max_logit_H.items():
        torch.testing.assert_close(peak, torch.maximum(*(s.max_logit_H[i] for s in single)))
    for load in records.load_E.values():
        assert int(load.sum()) == 2 * 2 * 24 * 2  # batches x rows x tokens x top-k
    gates = hooks.moe_gates(model)
    assert len(gates) == len(records.load_E) > 0
    imbalance = hooks.balance_routers(model, records, rate=0.01)
    assert imbalance >= 1.0
    assert any(bool(g.e_score_correction_bias.abs().sum() > 0) for g in gates)


def test_param_groups_cover_the_real_model_once(model: torch.nn.Module) -> None:
    groups = param_groups(model)
    names = [n for g in groups for n in g["names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    owner = {n: g for g in groups for n in g["names"]}
    assert owner["model.layers.1.mlp.experts.3.down_proj.weight"]["use_muon"]
    assert not owner["lm_head.weight"]["use_muon"]
    assert not owner["model.embed_tokens.weight"]["use_muon"]
    assert owner["model.layers.0.input_layernorm.weight"]["weight_decay"] == 0.0
    assert all("e_score_correction_bias" not in n for n in names)


def test_lora_on_attention_and_experts_merges_to_the_adapted_forward(
    model: torch.nn.Module,
) -> None:
    keys = set(model.state_dict())
    targets = ["q_b_proj", "kv_b_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adapted = apply_lora(model, targets=targets, rank=4, alpha=8.0)
    assert any(".experts." in n for n in adapted) and any("self_attn" in n for n in adapted)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_B"):
                p.normal_(std=0.05)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora" not in n)
    ids = _ids(3)
    base_free = build_model(get_preset("debug"), seed=0)
    with torch.no_grad():
        adapted_logits = model(ids)
        assert not torch.allclose(adapted_logits, base_free(ids), atol=1e-3)
        merge_lora(model)
        torch.testing.assert_close(model(ids), adapted_logits, atol=2e-5, rtol=1e-4)
    assert set(model.state_dict()) == keys
