"""PEFT format: an openk2-trained adapter loads in `peft` on transformers' DeepseekV3 with equal
logits, and PEFT's own adapters load back into openk2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from hf_oracle import openk2_from_hf, random_hf_model  # noqa: E402

from openk2.model import get_preset  # noqa: E402
from openk2.train.lora import adapted_modules, apply_lora, merge_lora  # noqa: E402
from openk2.train.peft_format import (  # noqa: E402
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_peft_adapter,
    save_peft_adapter,
)

peft = pytest.importorskip("peft")
TOLERANCE = 1e-4
TARGETS = [
    "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
    "gate_proj", "up_proj", "down_proj",
]  # fmt: skip


def _ids() -> torch.Tensor:
    return torch.randint(0, get_preset("debug").vocab_size, (2, 9), generator=torch.Generator())


def _train_adapter(model: torch.nn.Module, ids: torch.Tensor, steps: int = 3) -> None:
    """A few Adam steps on next-token loss, so B is no longer zero (a real trained adapter)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    for _ in range(steps):
        logits = model(ids[:, :-1], positions[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids, torch.arange(ids.shape[1]).expand_as(ids))


@pytest.fixture
def trained(tmp_path: Path) -> tuple[torch.nn.Module, Path, torch.Tensor]:
    """An openk2 debug model with a trained adapter, saved in PEFT format under tmp_path."""
    torch.manual_seed(0)
    config = get_preset("debug")
    model = openk2_from_hf(random_hf_model(config, seed=3), config)
    apply_lora(model, targets=TARGETS, rank=4, alpha=8.0, routed_experts=False)
    ids = _ids()
    _train_adapter(model, ids)
    save_peft_adapter(model, tmp_path / "adapter", base_model=None)
    return model, tmp_path / "adapter", ids


def test_openk2_adapter_loads_in_peft_with_equal_logits(trained) -> None:
    model, adapter, ids = trained
    config = json.loads((adapter / CONFIG_FILE).read_text())
    assert (config["peft_type"], config["r"], config["lora_alpha"]) == ("LORA", 4, 8)
    assert sorted(config["target_modules"]) == sorted(TARGETS)
    hf_model = random_hf_model(get_preset("debug"), seed=3)
    peft_model = peft.PeftModel.from_pretrained(hf_model, str(adapter)).eval()
    saved = load_file(str(adapter / WEIGHTS_FILE))
    loaded = peft.get_peft_model_state_dict(peft_model)
    assert set(loaded) == set(saved)  # every tensor landed on a PEFT module, none left out
    assert "base_model.model.model.layers.1.mlp.shared_experts.gate_proj.lora_A.weight" in saved
    assert any(".mlp.gate_proj." in k for k in saved)  # the dense first layer too
    for key, tensor in saved.items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0)
    with torch.no_grad():
        expected = peft_model(ids).logits
    actual = _logits(model, ids)
    debug = get_preset("debug")
    base = _logits(openk2_from_hf(random_hf_model(debug, seed=3), debug), ids)
    assert (actual - base).abs().max().item() > 100 * TOLERANCE  # the adapter matters
    assert (actual - expected).abs().max().item() <= TOLERANCE


def test_peft_adapter_round_trips_and_merges(trained) -> None:
    model, adapter, ids = trained
    config = get_preset("debug")
    fresh = openk2_from_hf(random_hf_model(config, seed=3), config)
    names = load_peft_adapter(fresh, adapter)
    assert sorted(names) == sorted(n for n, _ in adapted_modules(model))
    expected = _logits(model, ids)
    torch.testing.assert_close(_logits(fresh, ids), expected, rtol=0, atol=1e-6)
    assert merge_lora(fresh) == len(names)
    assert (_logits(fresh, ids) - expected).abs().max().item() <= TOLERANCE


def test_adapter_made_by_peft_loads_into_openk2(tmp_path: Path) -> None:
    config = get_preset("debug")
    hf_model = random_hf_model(config, seed=4)
    lora = peft.LoraConfig(r=3, lora_alpha=5, target_modules=["q_b_proj", "o_proj", "down_proj"])
    peft_model = peft.get_peft_model(hf_model, lora)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    peft_model.save_pretrained(str(tmp_path))
    ids = _ids()
    with torch.no_grad():
        expected = peft_model.eval()(ids).logits
    model = openk2_from_hf(random_hf_model(config, seed=4), config)
    load_peft_adapter(model, tmp_path)
    assert (_logits(model, ids) - expected).abs().max().item() <= TOLERANCE


def test_refusals_name_the_problem_and_change_nothing(trained, tmp_path: Path) -> None:
    config = get_preset("debug")
    routed = openk2_from_hf(random_hf_model(config), config)
    apply_lora(routed, targets=["up_proj"], rank=2, alpha=2.0)
    with pytest.raises(ValueError, match="routed experts"):
        save_peft_adapter(routed, tmp_path / "routed")
    _, adapter, _ = trained
    small = get_preset("debug").replace(q_lora_rank=16)
    model = openk2_from_hf(random_hf_model(small), small)
    with pytest.raises(ValueError, match="q_a_proj: adapter A"):
        load_peft_adapter(model, adapter)
    assert adapted_modules(model) == []  # nothing half-attached
    cfg = json.loads((adapter / CONFIG_FILE).read_text())
    (adapter / CONFIG_FILE).write_text(json.dumps(cfg | {"use_dora": True}))
    with pytest.raises(ValueError, match="use_dora"):
        load_peft_adapter(model, adapter)
    (adapter / CONFIG_FILE).write_text(json.dumps(cfg))
    tensors = load_file(str(adapter / WEIGHTS_FILE)) | {"base_model.model.extra": torch.zeros(1)}
    save_file(tensors, str(adapter / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="unexpected tensor 'base_model.model.extra'"):
        load_peft_adapter(model, adapter)
