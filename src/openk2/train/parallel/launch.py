"""`openk2 train --nproc N`: torchrun starts N copies of `main` here, one per rank.

torchrun owns process start-up, rendezvous and failure handling (`--standalone` on one
machine, `--nnodes/--node-rank/--master-addr/--master-port` across machines); this module
only builds its command line and is the per-rank entry point:

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        -m openk2.train.parallel.launch --config run.yaml
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openk2.train.config import TrainConfig
    from openk2.train.loop import Run

WORKER = "openk2.train.parallel.launch"


@dataclass(kw_only=True, slots=True)
class LaunchOptions:
    """Where the ranks run; `nnodes > 1` needs the rendezvous host of node 0."""

    nproc: int
    """Processes per node (one per GPU; on CPU a few, each with OMP_NUM_THREADS=1)."""
    nnodes: int = 1
    """Machines in the run."""
    node_rank: int = 0
    """This machine's index, 0 ... nnodes-1."""
    master_addr: str | None = None
    """Host of node 0 (required when nnodes > 1)."""
    master_port: int = 29500
    """Rendezvous port on node 0."""

    def __post_init__(self) -> None:
        if self.nproc < 1 or self.nnodes < 1:
            raise ValueError("--nproc and --nnodes must be at least 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise ValueError(f"--node-rank must be in [0, {self.nnodes})")
        if self.nnodes > 1 and not self.master_addr:
            raise ValueError("a multi-node run needs --master-addr (the host of node 0)")


def torchrun_command(opts: LaunchOptions, worker_args: list[str]) -> list[str]:
    """The torchrun command line that runs `main` on every rank with `worker_args`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(opts.nproc)]
    if opts.nnodes == 1:
        cmd.append("--standalone")
    else:
        cmd += ["--nnodes", str(opts.nnodes), "--node-rank", str(opts.node_rank)]
        cmd += ["--master-addr", str(opts.master_addr), "--master-port", str(opts.master_port)]
    return [*cmd, "-m", WORKER, *worker_args]


def worker_args(
    config: Path, *, steps: int | None, out_dir: Path | None, resume: bool, model_path: str | None
) -> list[str]:
    """The `main` arguments mirroring `openk2 train`'s own options (`model_path`: the start
    model the CLI resolved, e.g. from `embedded`)."""
    args = ["--config", str(config), "--resume" if resume else "--no-resume"]
    if model_path is not None:
        args += ["--model-path", model_path]
    if steps is not None:
        args += ["--steps", str(steps)]
    if out_dir is not None:
        args += ["--out-dir", str(out_dir)]
    return args


def main(argv: list[str] | None = None) -> None:
    """One rank: join the group, build the sharded run, train, export `final/` on rank 0."""
    import torch.distributed as dist

    from openk2.train.parallel.build import build_parallel_run, finish_parallel_run
    from openk2.train.parallel.dims import init_from_env

    args = _parse(argv)
    cfg = _load(args)
    dims = init_from_env(expert_parallel=cfg.parallel.expert_parallel)
    try:
        run = build_parallel_run(cfg, dims)
        _train(run, dims.is_writer)
        _report_memory(run, dims.rank, dims.world)
        summary = finish_parallel_run(run, dims)
        for key, value in (summary or {}).items():
            print(f"{key}: {value}", flush=True)
    finally:
        dist.destroy_process_group()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="openk2-train-rank")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--out-dir", type=Path)
    parser.add_argument("--model-path")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)


def _load(args: argparse.Namespace) -> TrainConfig:
    from openk2.train.config import load_config

    cfg = load_config(args.config)
    if args.model_path is not None:
        cfg.model.path = args.model_path
    if args.steps is not None:
        cfg.steps = args.steps
    if args.out_dir is not None:
        cfg.out_dir = str(args.out_dir)
    cfg.resume = args.resume
    return cfg


def _report_memory(run: Run, rank: int, world: int) -> None:
    """Every rank prints what it holds after its last step, before `final/` is exported."""
    import torch.distributed as dist

    from openk2.train.parallel.memory import rank_memory

    for turn in range(world):  # one rank at a time, so the lines do not interleave
        if turn == rank:
            print(rank_memory(run.model, run.optimizer).line(rank, world), flush=True)
        dist.barrier()


def _train(run: Run, is_writer: bool) -> None:
    """The loop, with one plain metrics line per step from rank 0 (torchrun prefixes none)."""
    from openk2.train.loop import steps

    for m in steps(run):
        if is_writer:
            print(
                f"step {m.step}/{run.cfg.steps} loss {m.loss:.6f} grad_norm {m.grad_norm:.4f} "
                f"max_logit {m.max_logit:.2f} {m.tokens_per_s:,.0f} tok/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
