"""`openk2 train` (MuonClip, SFT, LoRA from a run file) and `openk2 synth-chats` (tool-use data)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from openk2.cli import app


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Run file (.yaml/.yml/.toml).")],
    steps: Annotated[int | None, typer.Option(help="Override the optimizer steps.")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Override the run directory.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint.")] = True,
    nproc: Annotated[
        int | None,
        typer.Option(help="Processes per node: FSDP2 + expert parallel via torchrun."),
    ] = None,
    nnodes: Annotated[int, typer.Option(help="Machines (with --nproc).")] = 1,
    node_rank: Annotated[int, typer.Option(help="This machine's index (with --nnodes).")] = 0,
    master_addr: Annotated[str | None, typer.Option(help="Host of node 0 (multi-node).")] = None,
    master_port: Annotated[int, typer.Option(help="Rendezvous port on node 0.")] = 29500,
) -> None:
    """Train or fine-tune a model (MuonClip, SFT, LoRA) with a live progress bar; with
    --nproc N on N processes through torchrun (FSDP2, expert parallelism, DCP checkpoints)."""
    from openk2.embedded import resolve_model
    from openk2.train.build import build_run
    from openk2.train.config import load_config
    from openk2.train.finish import finish_run

    try:
        cfg = load_config(config)
        if cfg.model.path is not None:  # `path: embedded` starts from the shipped model
            cfg.model.path = resolve_model(cfg.model.path)
        if steps is not None:
            cfg.steps = steps
        if out_dir is not None:
            cfg.out_dir = str(out_dir)
        cfg.resume = resume
        if nproc is not None:
            launch = _launch_options(nproc, nnodes, node_rank, master_addr, master_port)
            _check_parallel(cfg, nproc * nnodes)
        else:
            run = build_run(cfg)
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if nproc is not None:
        _run_torchrun(launch, config, cfg.model.path, steps=steps, out_dir=out_dir, resume=resume)
        return
    _train_with_progress(run)
    summary = finish_run(run)
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")


def _launch_options(
    nproc: int, nnodes: int, node_rank: int, master_addr: str | None, master_port: int
) -> Any:
    from openk2.train.parallel.launch import LaunchOptions

    return LaunchOptions(
        nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
        master_port=master_port,
    )  # fmt: skip


def _check_parallel(cfg: Any, world: int) -> None:
    from openk2.train.parallel.build import check_parallel_config

    check_parallel_config(cfg, world)


def _run_torchrun(
    launch: Any, config: Path, model_path: str | None, *, steps: int | None,
    out_dir: Path | None, resume: bool,
) -> None:  # fmt: skip
    """Hand the run to torchrun (it starts, watches and stops the ranks); exit with its code."""
    import subprocess

    from openk2.train.parallel.launch import torchrun_command, worker_args

    args = worker_args(config, steps=steps, out_dir=out_dir, resume=resume, model_path=model_path)
    cmd = torchrun_command(launch, args)
    typer.echo("launch: " + " ".join(cmd[1:]))
    code = subprocess.call(cmd)
    if code:
        typer.secho(f"error: torchrun exited with {code}", fg="red", err=True)
        raise typer.Exit(code)


def _train_with_progress(run: Any) -> None:
    """Run the loop under a rich progress bar: loss, tokens/s, lr, max logit, clip events."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from openk2.train.loop import steps

    clips = 0
    columns = (
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        task = progress.add_task("train", total=run.cfg.steps, completed=run.step, stats="")
        for m in steps(run):
            clips += m.clipped_heads
            stats = (
                f"loss {m.loss:.4f} | {m.tokens_per_s:,.0f} tok/s | lr {m.lr:.2e} | "
                f"max logit {m.max_logit:.1f} | clips {clips}"
            )
            progress.update(task, completed=m.step, stats=stats)


@app.command("synth-chats")
def synth_chats_command(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    train: Annotated[int, typer.Option(help="Training tasks to generate.")] = 20000,
    heldout: Annotated[int, typer.Option(help="Held-out tasks to generate.")] = 200,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    followup_rate: Annotated[
        float, typer.Option(help="Share of chats with an earlier turn.")
    ] = 0.25,
) -> None:
    """Write synthetic tool-use chats: train.jsonl (SFT records) and {train,heldout}_tasks.jsonl."""
    from openk2.train.synthetic import generate_tasks, training_records, write_jsonl

    try:
        train_tasks = generate_tasks(train, seed=seed, followup_rate=followup_rate)
        held = generate_tasks(heldout, seed=seed, split="heldout", followup_rate=followup_rate)
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    n_records = write_jsonl(out / "train.jsonl", training_records(train_tasks))
    write_jsonl(out / "heldout.jsonl", training_records(held))
    write_jsonl(out / "train_tasks.jsonl", (t.to_json() for t in train_tasks))
    write_jsonl(out / "heldout_tasks.jsonl", (t.to_json() for t in held))
    typer.echo(f"wrote {n_records} training chats from {train} tasks and {heldout} held-out tasks")


@app.command("lora-merge")
def lora_merge_command(
    base: Annotated[str, typer.Option(help="Base model directory, or `embedded`.")],
    adapter: Annotated[Path, typer.Option(help="PEFT LoRA adapter folder.")],
    out: Annotated[Path, typer.Option(help="Where to write the merged, servable model.")],
) -> None:
    """Fold a PEFT-format LoRA adapter into its base model and save the result."""
    from openk2.embedded import resolve_model
    from openk2.train.peft_format import merge_adapter_into

    try:
        merged = merge_adapter_into(resolve_model(base), adapter, out)
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"merged {merged} adapted modules into {out}")


@app.command("finetune")
def finetune_command(
    data: Annotated[Path, typer.Option(help="Chat JSONL (OpenAI or ShareGPT), or plain text.")],
    base: Annotated[str, typer.Option(help="Base model directory, or `embedded`.")],
    lora_rank: Annotated[int, typer.Option(help="LoRA rank r (alpha = 2r).")] = 8,
    epochs: Annotated[float, typer.Option(help="Passes over the training split.")] = 1.0,
    out_dir: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/finetune"),
    held_out: Annotated[float, typer.Option(help="Share of examples held out.")] = 0.1,
    seq_len: Annotated[int, typer.Option(help="Tokens per training row.")] = 512,
    batch_size: Annotated[int, typer.Option(help="Rows per step.")] = 4,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    threads: Annotated[int | None, typer.Option(help="torch threads.")] = None,
) -> None:
    """LoRA fine-tune on one data file, with held-out eval before and after training."""
    from openk2.embedded import resolve_model
    from openk2.train.finetune import FinetuneOptions, run_finetune

    try:
        opts = FinetuneOptions(
            data=data, base=resolve_model(base), out_dir=out_dir, lora_rank=lora_rank,
            epochs=epochs, held_out=held_out, seq_len=seq_len, batch_size=batch_size, lr=lr,
            threads=threads,
        )  # fmt: skip
        summary = run_finetune(opts)
    except (ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")
    if "peft_adapter" in summary:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", data.stem).strip("-.") or "adapter"
        typer.echo(f"serve it: openk2 serve --model {base} --lora {name}={summary['peft_adapter']}")
