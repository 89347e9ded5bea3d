"""WSD and cosine schedules: warm-up, plateau, decay to the floor; LR applied to groups."""

from __future__ import annotations

import pytest
import torch

from openk2.train.optim.schedule import ScheduleConfig, apply_lr, lr_factor


def test_wsd_warms_up_holds_then_decays_to_floor() -> None:
    cfg = ScheduleConfig(kind="wsd", warmup_steps=10, decay_fraction=0.2, min_lr_ratio=0.1)
    f = [lr_factor(s, 100, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == 1.0
    assert all(x == 1.0 for x in f[10:80])
    assert all(a > b for a, b in zip(f[80:], f[81:], strict=False))
    assert f[99] == pytest.approx(0.1)


def test_cosine_decays_from_end_of_warmup_and_linear_wsd_is_linear() -> None:
    cos = ScheduleConfig(kind="cosine", warmup_steps=5, min_lr_ratio=0.0)
    assert lr_factor(4, 25, cos) == 1.0
    assert lr_factor(14, 25, cos) == pytest.approx(0.5)
    assert lr_factor(24, 25, cos) == pytest.approx(0.0, abs=1e-12)
    lin = ScheduleConfig(kind="wsd", decay_fraction=0.5, decay_shape="linear", min_lr_ratio=0.0)
    assert lr_factor(54, 100, lin) == pytest.approx(0.9)


def test_constant_and_invalid_configs() -> None:
    assert lr_factor(50, 100, ScheduleConfig(kind="constant")) == 1.0
    with pytest.raises(ValueError, match="kind"):
        ScheduleConfig(kind="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="decay_fraction"):
        ScheduleConfig(decay_fraction=1.5)
    with pytest.raises(ValueError, match="total_steps"):
        lr_factor(0, 0, ScheduleConfig())


def test_apply_lr_scales_each_group_from_its_base() -> None:
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": 1.0}, {"params": [q], "lr": 0.1}])
    apply_lr(opt, 0.5)
    assert apply_lr(opt, 0.5) == 0.5
    assert opt.param_groups[1]["lr"] == pytest.approx(0.05)
