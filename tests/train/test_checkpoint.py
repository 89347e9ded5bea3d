"""Checkpoint helpers: optimizer state restores but config hyperparameters win; pruning; latest."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from openk2.train.checkpoint import (
    TRAINER_FILE,
    latest_checkpoint,
    load_optimizer_state,
    prune_checkpoints,
)
from openk2.train.optim.groups import GroupHyper, param_groups
from openk2.train.optim.muon import MuonAdamW


def _stepped(lr: float) -> tuple[nn.Module, MuonAdamW]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2))
    opt = MuonAdamW(param_groups(model, GroupHyper(lr=lr)))
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    return model, opt


def test_optimizer_state_restores_with_the_configured_lr() -> None:
    _, old = _stepped(0.01)
    _, new = _stepped(0.05)
    for state in new.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.zero_()
    load_optimizer_state(new, old.state_dict())
    assert all(g["lr"] == g["base_lr"] == 0.05 for g in new.param_groups)
    for p_old, p_new in zip(old.state.values(), new.state.values(), strict=True):
        for key, value in p_old.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(p_new[key]))


def test_optimizer_group_mismatch_is_an_error() -> None:
    _, old = _stepped(0.01)
    model = nn.Linear(4, 6)
    other = MuonAdamW(param_groups(model, GroupHyper(use_muon=False)))
    with pytest.raises(ValueError, match="do not match"):
        load_optimizer_state(other, old.state_dict())


def test_latest_skips_incomplete_and_prune_keeps_newest(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    for step in (2, 4, 6):
        (root / f"step_{step:08d}").mkdir(parents=True)
        (root / f"step_{step:08d}" / TRAINER_FILE).write_bytes(b"x")
    (root / "step_00000008.tmp").mkdir()
    (root / "step_00000008.tmp" / TRAINER_FILE).write_bytes(b"x")  # crashed before the rename
    (root / "step_00000010").mkdir()  # crashed before trainer.pt
    assert latest_checkpoint(tmp_path) == root / "step_00000006"
    prune_checkpoints(tmp_path, keep=2)
    assert latest_checkpoint(tmp_path) == root / "step_00000006"
    assert not (root / "step_00000002").exists() and (root / "step_00000004").exists()
    assert latest_checkpoint(tmp_path / "none") is None
