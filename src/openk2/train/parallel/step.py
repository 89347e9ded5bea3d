"""The multi-process side of a training step (`loop.StepParallel`) over torch.distributed.

Every rank draws the same global batch from its identically seeded loader and keeps a
contiguous slice of its rows, so the data order, the loader state and therefore a resume are
the same whatever the world size. Scalars and the QK-Clip / load-balancing records are
all-reduced, so every rank takes the same post-step decisions on its shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from openk2.train import hooks
from openk2.train.loop import Batch
from openk2.train.parallel.dims import ParallelDims

if TYPE_CHECKING:
    from openk2.train.loop import Run


@dataclass(kw_only=True, slots=True)
class DistributedStep:
    """`StepParallel` for ranks joined by the default process group."""

    dims: ParallelDims

    @property
    def is_writer(self) -> bool:
        return self.dims.is_writer

    def local_rows(self, batch: Batch) -> Batch:
        inputs_BT, labels_BT = batch
        rows = inputs_BT.shape[0]
        if rows % self.dims.world:
            raise ValueError(f"batch of {rows} rows does not split over {self.dims.world} ranks")
        share = rows // self.dims.world
        keep = slice(self.dims.rank * share, (self.dims.rank + 1) * share)
        return inputs_BT[keep], labels_BT[keep]

    def total(self, value: float) -> float:
        t = torch.tensor(float(value), dtype=torch.float64)
        dist.all_reduce(t)
        return float(t)

    def reduce_records(self, records: hooks.StepRecords) -> None:
        for max_H in records.max_logit_H.values():
            dist.all_reduce(max_H, op=dist.ReduceOp.MAX)
        for load_E in records.load_E.values():
            dist.all_reduce(load_E)

    def checkpoint(self, run: Run) -> Path:
        from openk2.train.parallel.checkpoint import save_distributed

        return save_distributed(run, self.dims)
