"""A `Run` on several processes: the one-process build, then EP, then FSDP2, then DCP resume.

Every rank builds the same seeded full model (cheap at CPU sizes; a 1T model would be built on
the meta device and filled from a checkpoint instead), drops the experts it does not own and
shards the rest, so rank r holds exactly rank r's part of the one-process model. The optimizer
is built on the sharded parameters, which is what makes its state sharded too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh

from openk2.train.build import build_model_from_spec, build_optimizer, build_parts, new_run
from openk2.train.checkpoint import latest_checkpoint
from openk2.train.config import TrainConfig
from openk2.train.finish import finish_run
from openk2.train.loop import Run
from openk2.train.parallel.checkpoint import (
    load_distributed,
    load_whole_model,
    save_distributed,
)
from openk2.train.parallel.dims import ParallelDims
from openk2.train.parallel.ep import local_expert_params, shard_experts
from openk2.train.parallel.fsdp import apply_fsdp
from openk2.train.parallel.step import DistributedStep
from openk2.train.text import TextCodec


def check_parallel_config(cfg: TrainConfig, world: int) -> None:
    """Refuse what the multi-process path does not do, before any process group work."""
    if cfg.lora.enabled:
        raise ValueError("LoRA runs train in one process; drop --nproc (or lora.enabled)")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over {world} ranks")


def build_parallel_run(
    cfg: TrainConfig, dims: ParallelDims, *, codec: TextCodec | None = None
) -> Run:
    """The sharded run of this rank, resumed from the newest checkpoint when cfg.resume."""
    check_parallel_config(cfg, dims.world)
    parts = build_parts(cfg, codec)
    shard_experts(parts.model, dims)
    mesh = init_device_mesh(_device_type(), (dims.world,))
    apply_fsdp(parts.model, mesh, local_expert_params(parts.model))
    run = new_run(cfg, parts)
    run.parallel = DistributedStep(dims=dims)
    latest = latest_checkpoint(run.out_dir) if cfg.resume else None
    if latest is not None:
        run.step = int(load_distributed(latest, run)["step"])
    return run


def _device_type() -> str:
    return "cuda" if dist.get_backend() == "nccl" else "cpu"


def finish_parallel_run(run: Run, dims: ParallelDims) -> dict[str, Any] | None:
    """Last DCP checkpoint, then rank 0 exports `final/` (HF safetensors layout, tokenizer,
    loss plot) from it through the one-process `finish_run`; other ranks return None."""
    latest = latest_checkpoint(run.out_dir)
    if latest is None or not latest.name.endswith(f"{run.step:08d}"):
        latest = save_distributed(run, dims)
    summary = _export(run, latest) if dims.is_writer else None
    dist.barrier()
    return summary


def _export(run: Run, latest: Path) -> dict[str, Any]:
    whole = build_model_from_spec(run.cfg.model, run.cfg.seed)
    load_whole_model(whole, latest)
    plain = Run(
        cfg=run.cfg,
        model=whole,
        optimizer=build_optimizer(whole, run.cfg.optim),
        loader=run.loader,
        out_dir=run.out_dir,
        tokenizer=run.tokenizer,
        step=run.step,
        history=run.history,
    )
    return finish_run(plain)
