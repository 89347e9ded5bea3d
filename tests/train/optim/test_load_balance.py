"""Aux-loss-free balancing moves bias towards underloaded experts with a sign rule."""

from __future__ import annotations

import pytest
import torch

from openk2.train.optim.load_balance import update_router_bias_


def test_overloaded_experts_lose_bias_underloaded_gain() -> None:
    bias = torch.zeros(4)
    imbalance = update_router_bias_(bias, torch.tensor([10.0, 2.0, 4.0, 4.0]), rate=0.01)
    assert imbalance == pytest.approx(2.0)
    assert bias[0] < 0 < bias[1]
    assert float(bias.sum()) == pytest.approx(0.0, abs=1e-7)


def test_even_load_and_empty_load_leave_bias_alone() -> None:
    bias = torch.full((3,), 0.5)
    assert update_router_bias_(bias, torch.full((3,), 7.0), rate=0.1) == 1.0
    assert update_router_bias_(bias, torch.zeros(3), rate=0.1) == 0.0
    assert torch.equal(bias, torch.full((3,), 0.5))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="shape"):
        update_router_bias_(torch.zeros(3), torch.ones(4), rate=0.1)
    with pytest.raises(ValueError, match="rate"):
        update_router_bias_(torch.zeros(3), torch.ones(3), rate=-1.0)
