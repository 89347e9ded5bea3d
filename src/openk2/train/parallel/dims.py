"""Who this process is in a distributed run, passed around instead of rank/world globals."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(kw_only=True, slots=True, frozen=True)
class ParallelDims:
    """The data-parallel world, with expert parallelism borrowed from it (torchtitan's layout:
    the EP ranks are the DP ranks, so each rank holds every dense shard and 1/ep of the
    routed experts)."""

    world: int
    """Processes in the run (torchrun's WORLD_SIZE)."""
    rank: int
    """This process's rank."""
    ep: int
    """Expert-parallel degree: 1 (every rank holds every expert) or `world`."""

    def __post_init__(self) -> None:
        if self.ep not in (1, self.world):
            raise ValueError(f"expert parallelism must be 1 or the world size {self.world}")

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes the files every rank agrees on (metrics, trainer state, final/)."""
        return self.rank == 0


def backend() -> str:
    """nccl where CUDA is present, gloo on CPU (the only backend this machine can test)."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def init_from_env(*, expert_parallel: bool) -> ParallelDims:
    """Join the process group torchrun set up in the environment and describe this rank."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("not launched by torchrun: use `openk2 train --nproc N`")
    if not dist.is_initialized():
        dist.init_process_group(backend())
    world = dist.get_world_size()
    return ParallelDims(world=world, rank=dist.get_rank(), ep=world if expert_parallel else 1)
