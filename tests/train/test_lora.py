"""LoRA: zero-init adapters change nothing; merged weights equal the adapted forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from openk2.train.lora import apply_lora, lora_state_dict, merge_lora


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_b_proj = nn.Linear(8, 12, bias=False)
        self.o_proj = nn.Linear(12, 8, bias=True)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.o_proj(torch.relu(self.q_b_proj(x))))


def test_merge_equals_adapted_forward_and_restores_base_keys() -> None:
    torch.manual_seed(0)
    model, x = _Block(), torch.randn(5, 8)
    keys = set(model.state_dict())
    base_out = model(x)
    names = apply_lora(model, targets=["q_b_proj", "o_proj"], rank=3, alpha=6.0)
    assert names == ["q_b_proj", "o_proj"]
    torch.testing.assert_close(model(x), base_out)  # B = 0 at init
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{m}.lora_{ab}" for m in names for ab in "AB"}
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    adapted = model(x)
    assert not torch.allclose(adapted, base_out)
    assert set(lora_state_dict(model)) == trainable
    assert merge_lora(model) == 2
    torch.testing.assert_close(model(x), adapted, atol=1e-5, rtol=1e-5)
    assert set(model.state_dict()) == keys


def test_bad_targets_and_double_adapters() -> None:
    with pytest.raises(ValueError, match="no module matches"):
        apply_lora(_Block(), targets=["nope"], rank=2, alpha=2.0)
    model = _Block()
    apply_lora(model, targets=["o_proj"], rank=2, alpha=2.0)
    with pytest.raises(ValueError, match="already"):
        apply_lora(model, targets=["o_proj"], rank=2, alpha=2.0)
    with pytest.raises(ValueError, match="rank"):
        apply_lora(_Block(), targets=["o_proj"], rank=0, alpha=2.0)
