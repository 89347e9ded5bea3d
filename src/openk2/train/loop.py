"""The training loop: accumulate, step, run the post-step hooks, log, checkpoint, repeat.

One optimizer step:
1. draw `grad_accum` micro-batches and count their target tokens, so the loss is the mean over
   every target of the step however they are spread across micro-batches;
2. forward/backward each micro-batch (bf16 autocast only if asked: fp32 is faster on AVX2 CPUs);
3. clip the global gradient norm, set the scheduled LR, `optimizer.step()`;
4. post-step hooks: QK-Clip on every MLA layer from the max logits recorded in step 2, then the
   aux-loss-free router-bias update from the recorded expert loads;
5. metrics line, and a checkpoint every `ckpt_interval` steps.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from openk2.train import hooks
from openk2.train.checkpoint import prune_checkpoints, save_checkpoint
from openk2.train.config import TrainConfig, to_dict
from openk2.train.data import IGNORE, BatchLoader
from openk2.train.metrics import MetricsLog, StepMetrics
from openk2.train.optim.schedule import apply_lr, lr_factor
from openk2.train.optim.sharded import local_part

if TYPE_CHECKING:
    from openk2.tokenizer import TokenizerSource

StepCallback = Callable[[StepMetrics], None]
CLIP_EPS = 1e-6
"""Added to the gradient norm before dividing, as `torch.nn.utils.clip_grad_norm_` does."""
Batch = tuple[torch.Tensor, torch.Tensor]


class StepParallel(Protocol):
    """What a multi-process run adds to a step (`openk2.train.parallel.step` implements it);
    a single-process run has none and the loop does exactly what it always did."""

    is_writer: bool
    """Whether this process writes the shared files (metrics; rank 0)."""

    def local_rows(self, batch: Batch) -> Batch:
        """This rank's slice of a global batch."""
        ...

    def total(self, value: float) -> float:
        """The sum of `value` over every rank."""
        ...

    def reduce_records(self, records: hooks.StepRecords) -> None:
        """Merge the forward records over ranks (max logits: max; expert loads: sum)."""
        ...

    def checkpoint(self, run: Run) -> Path:
        """Save a resumable checkpoint collectively."""
        ...


@dataclass(kw_only=True, slots=True)
class Run:
    """Everything a training run mutates, built by `build.build_run`."""

    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loader: BatchLoader
    out_dir: Path
    qk_clip_tau: float | None = None
    """Effective QK-Clip threshold (None: off, e.g. under LoRA, where the base is frozen)."""
    router_bias_rate: float = 0.0
    """Effective router-bias update rate (0 under LoRA)."""
    tokenizer: TokenizerSource | None = None
    """The tokenizer files the data was encoded with, copied into `final/` (None when a
    caller injected its own codec, e.g. a test's toy one: there are no files to ship)."""
    step: int = 0
    """Optimizer steps completed so far (restored on resume)."""
    history: list[StepMetrics] = field(default_factory=list)
    """Metrics of the steps run in this process."""
    parallel: StepParallel | None = None
    """The multi-process side of each step (None: one process)."""


def autocast(precision: str) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CPU when asked, else nothing."""
    if precision == "bfloat16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def lm_loss_sum(logits_BTV: torch.Tensor, labels_BT: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy over non-IGNORE labels (fp32 log-softmax)."""
    return F.cross_entropy(
        logits_BTV.float().flatten(0, 1), labels_BT.flatten(), ignore_index=IGNORE, reduction="sum"
    )


def target_loss_sum(model: torch.nn.Module, inputs_BT: torch.Tensor, labels_BT: torch.Tensor,
                    precision: str) -> torch.Tensor:
    """`lm_loss_sum` with the head applied only where a label counts.

    SFT masks most positions (system prompt, tool schemas, tool results: ~89% of the embedded
    corpus), and the vocabulary projection plus its log-softmax are the costliest per-token
    work of a small model; skipping the masked rows gives the same loss and gradients.
    """
    keep_N = (labels_BT != IGNORE).flatten()
    with autocast(precision):
        hidden_ND = model.model(inputs_BT).flatten(0, 1)[keep_N]
        logits_NV = model.lm_head(hidden_ND)
    return F.cross_entropy(logits_NV.float(), labels_BT.flatten()[keep_N], reduction="sum")


def forward_backward(
    run: Run, batches: list[tuple[torch.Tensor, torch.Tensor]], targets: int
) -> tuple[float, hooks.StepRecords]:
    """Accumulate gradients of the mean loss over `targets` tokens; return it and the records."""
    records = hooks.StepRecords()
    total = 0.0
    for inputs_BT, labels_BT in batches:
        loss = target_loss_sum(run.model, inputs_BT, labels_BT, run.cfg.precision)
        records.collect(run.model)
        loss = loss / max(1, targets)
        loss.backward()
        total += float(loss.detach())
    return total, records


def clip_gradients(run: Run) -> float:
    """Global grad norm before clipping (clipping only if `optim.grad_clip` is set).

    The norm is summed in float64 from each process's own pieces (its FSDP shards and its
    experts), so one process and several agree on it to rounding; torch's fp32
    `clip_grad_norm_` drifts by ~1e-4 relative on a few hundred thousand values.
    """
    grads = [p.grad for p in run.model.parameters() if p.grad is not None]
    squares = sum(float(local_part(g).double().pow(2).sum()) for g in grads)
    if run.parallel is not None:
        squares = run.parallel.total(squares)
    norm = math.sqrt(squares)
    limit = run.cfg.optim.grad_clip
    coef = 1.0 if limit is None else min(1.0, limit / (norm + CLIP_EPS))
    if coef < 1.0:
        for g in grads:
            g.mul_(coef)
    return norm


def accumulate(run: Run, batches: list[Batch]) -> tuple[float, hooks.StepRecords, int]:
    """Forward/backward a step's global batches: (mean loss, records, target count).

    Across processes each rank runs its slice of every batch, its loss divided by the global
    target count, and the loss, target count and records are totalled over the ranks.
    """
    par = run.parallel
    if par is not None:
        batches = [par.local_rows(b) for b in batches]
    targets = sum(int((y != IGNORE).sum()) for _, y in batches)
    if par is not None:
        targets = int(par.total(targets))
    loss, records = forward_backward(run, batches, targets)
    if par is not None:
        loss = par.total(loss)
        par.reduce_records(records)
    return loss, records, targets


def train_step(run: Run) -> StepMetrics:
    """One optimizer step (steps 1-4 of the module docstring); returns its metrics."""
    cfg = run.cfg
    start = time.perf_counter()
    batches = [run.loader.next_batch() for _ in range(cfg.grad_accum)]
    tokens = sum(x.numel() for x, _ in batches)
    loss, records, targets = accumulate(run, batches)
    grad_norm = clip_gradients(run)
    lr = apply_lr(run.optimizer, lr_factor(run.step, cfg.steps, cfg.schedule))
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    clip = hooks.qk_clip(run.model, records, run.qk_clip_tau)
    imbalance = hooks.balance_routers(run.model, records, run.router_bias_rate)
    run.step += 1
    seconds = time.perf_counter() - start
    return StepMetrics(
        step=run.step,
        loss=loss,
        lr=lr,
        grad_norm=grad_norm,
        tokens=tokens,
        targets=targets,
        tokens_per_s=tokens / seconds if seconds > 0 else 0.0,
        max_logit=clip.max_logit,
        clipped_heads=clip.clipped_heads,
        load_imbalance=imbalance,
        seconds=seconds,
    )


def steps(run: Run) -> Iterator[StepMetrics]:
    """Run the remaining steps, logging and checkpointing; yield each step's metrics."""
    writer = run.parallel is None or run.parallel.is_writer
    log = MetricsLog(run.out_dir / "metrics.jsonl")
    if writer:
        log.truncate_after(run.step)
    run.model.train()
    while run.step < run.cfg.steps:
        metrics = train_step(run)
        if not math.isfinite(metrics.loss):
            raise FloatingPointError(f"loss became {metrics.loss} at step {metrics.step}")
        run.history.append(metrics)
        if writer and (run.step % run.cfg.log_interval == 0 or run.step == run.cfg.steps):
            log.write(metrics)
        if run.cfg.ckpt_interval and run.step % run.cfg.ckpt_interval == 0:
            checkpoint(run)
        yield metrics


def checkpoint(run: Run) -> Path:
    """Save a resumable checkpoint of the current step and prune old ones."""
    if run.parallel is not None:
        return run.parallel.checkpoint(run)
    path = save_checkpoint(
        run.out_dir,
        step=run.step,
        model=run.model,
        optimizer=run.optimizer,
        loader=run.loader,
        extra={"config": to_dict(run.cfg)},
    )
    prune_checkpoints(run.out_dir, run.cfg.keep_checkpoints)
    return path


def train(run: Run, on_step: StepCallback | None = None) -> list[StepMetrics]:
    """Run to `cfg.steps`; call `on_step` after each step; return this process's metrics."""
    for metrics in steps(run):
        if on_step is not None:
            on_step(metrics)
    return run.history
