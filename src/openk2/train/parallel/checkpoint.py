"""Sharded checkpoints with torch.distributed.checkpoint (DCP), resumable at any world size.

Layout of `{out_dir}/checkpoints/step_{N:08d}/` (the same directory names as a one-process
run, so `latest_checkpoint` and pruning are shared):
- `dcp/`: model and optimizer state through `get_state_dict`, keyed by parameter name
  (optimizer state flattened per parameter). FSDP shards are stored as slices of the whole
  tensor and each expert once, from its owner, so DCP's load planner hands every rank of any
  later layout exactly the pieces it holds: save at 2 ranks, resume at 1, or the reverse;
- `trainer.pt` (rank 0): step, loader position, RNG states, run config, world size.

Written into `step_N.tmp/` and renamed by rank 0 after every rank has finished, as in the
one-process layout, so a crash never leaves a checkpoint that looks complete.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_state_dict,
    set_state_dict,
)

from openk2.train.checkpoint import (
    PREFIX,
    TRAINER_FILE,
    capture_rng,
    checkpoints_root,
    prune_checkpoints,
    restore_rng,
)
from openk2.train.config import to_dict
from openk2.train.parallel.dims import ParallelDims

if TYPE_CHECKING:
    from openk2.train.loop import Run

DCP_DIR = "dcp"
_OPTIONS = StateDictOptions(flatten_optimizer_state_dict=True)


def is_distributed_checkpoint(path: Path) -> bool:
    """Whether a step checkpoint was written by this module (rather than the 1-process one)."""
    return (path / DCP_DIR).is_dir()


def save_distributed(run: Run, dims: ParallelDims) -> Path:
    """Every rank writes its shards of step `run.step`; rank 0 adds the trainer state."""
    final = checkpoints_root(run.out_dir) / f"{PREFIX}{run.step:08d}"
    tmp = final.with_name(final.name + ".tmp")
    if dims.is_writer:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    model_sd, optim_sd = get_state_dict(run.model, run.optimizer, options=_OPTIONS)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp / DCP_DIR)
    if dims.is_writer:
        torch.save(_trainer_state(run, dims), tmp / TRAINER_FILE)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        prune_checkpoints(run.out_dir, run.cfg.keep_checkpoints)
    dist.barrier()
    return final


def _trainer_state(run: Run, dims: ParallelDims) -> dict[str, Any]:
    return {
        "step": run.step,
        "loader": run.loader.state_dict(),
        "rng": capture_rng(),
        "config": to_dict(run.cfg),
        "world": dims.world,
    }


def load_distributed(path: Path, run: Run) -> dict[str, Any]:
    """Restore model, optimizer, loader and RNG from `path` into this (sharded) run.

    The optimizer's hyperparameters stay the run config's (as in `checkpoint.py`): only the
    per-parameter state comes from the checkpoint.
    """
    if not is_distributed_checkpoint(path):
        raise ValueError(
            f"{path} was written by a one-process run; resume it without --nproc "
            "(multi-process runs read only DCP checkpoints)"
        )
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in run.optimizer.param_groups]
    model_sd, optim_sd = get_state_dict(run.model, run.optimizer, options=_OPTIONS)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path / DCP_DIR)
    set_state_dict(
        run.model,
        run.optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
        options=_OPTIONS,
    )
    for group, values in zip(run.optimizer.param_groups, hyper, strict=True):
        group.update(values)
    trainer = torch.load(path / TRAINER_FILE, weights_only=True)
    run.loader.load_state_dict(trainer["loader"])
    restore_rng(trainer["rng"])
    return trainer


def load_whole_model(model: nn.Module, path: Path) -> None:
    """Fill a plain, unsharded model in this process from a DCP step checkpoint (export):
    the loader reads every shard of every tensor, and fails on a key the checkpoint lacks."""
    dcp.load({"model": model.state_dict()}, checkpoint_id=path / DCP_DIR, no_dist=True)
