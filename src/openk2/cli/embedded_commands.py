"""`openk2 embedded corpus|export|eval`: rebuild and measure the shipped default model;
`openk2 demo`: run it as a swarm over the demo workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app

embedded_app = typer.Typer(help="Build and evaluate the embedded default model.",
                           no_args_is_help=True)
app.add_typer(embedded_app, name="embedded")


@embedded_app.command("corpus")
def corpus_command(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/embedded"),
    client: Annotated[int, typer.Option(min=0, help="Client-driven training tasks.")] = 6000,
    swarm: Annotated[int, typer.Option(min=0, help="Orchestrator training tasks.")] = 2400,
    heldout: Annotated[int, typer.Option(min=1, help="Held-out tasks of each kind.")] = 100,
    echo: Annotated[int, typer.Option(min=0, help="Copy drills mixed in.")] = 0,
    chat: Annotated[int, typer.Option(min=0, help="Conversational chats mixed in (greetings, "
                                      "thanks, out-of-scope requests).")] = 0,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
) -> None:
    """Write the training chats (train.jsonl) and held-out tasks (heldout_{client,swarm}.jsonl)."""
    from openk2.embedded.corpus import CorpusSpec, write_corpus

    spec = CorpusSpec(client=client, swarm=swarm, heldout=heldout, echo=echo, chat=chat,
                      seed=seed)
    counts = write_corpus(out, spec)
    typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" -> {out}")


@embedded_app.command("export")
def export_command(
    final: Annotated[Path, typer.Argument(help="A training run's final/ directory.")],
    out: Annotated[Path | None, typer.Option(help="Target (default: the package's copy).")] = None,
) -> None:
    """Ship a trained model: bf16 weights, config and tokenizer into the package."""
    from openk2.embedded.export import export_model
    from openk2.model.safetensors_io import CheckpointError

    try:
        sizes = export_model(final, out)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="FINAL") from exc
    total = sum(sizes.values()) / 2**20
    typer.echo(f"exported {len(sizes)} files, {total:.1f} MiB")


@embedded_app.command("eval")
def eval_command(
    tasks_dir: Annotated[Path, typer.Option("--tasks", help="Directory with heldout_*.jsonl.")]
    = Path("data/embedded"),
    mode: Annotated[list[str] | None, typer.Option(help="client and/or swarm (default both).")]
    = None,
    base_url: Annotated[str | None, typer.Option(help="A running server; default: start "
                                                  "`openk2 serve --model embedded`.")] = None,
    model: Annotated[str, typer.Option(help="Model id (with --base-url).")] = "openk2-embedded",
    serve_model: Annotated[str, typer.Option(help="What the started server loads (without "
                                             "--base-url): 'embedded' or a checkpoint dir.")]
    = "embedded",
    limit: Annotated[int | None, typer.Option(min=1, help="First N tasks of each mode.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Tasks in flight.")] = 8,
    report: Annotated[Path | None, typer.Option(help="Write every graded task as JSON.")] = None,
) -> None:
    """Held-out exact task success through the OpenAI API (client) and the swarm runtime."""
    import contextlib
    import json

    from openk2.embedded.evaluate import evaluate, summarize, timed, write_report
    from openk2.embedded.server import LocalServer, local_server
    from openk2.train.synthetic import read_tasks

    modes = mode or ["client", "swarm"]
    if bad := [m for m in modes if m not in ("client", "swarm")]:
        raise typer.BadParameter(f"unknown mode(s) {bad}; use client or swarm", param_hint="--mode")
    task_sets = {m: read_tasks(tasks_dir / f"heldout_{m}.jsonl")[:limit] for m in modes}
    graded, seconds = [], 0.0
    server = (contextlib.nullcontext(LocalServer(base_url, model)) if base_url
              else local_server(serve_model))
    with server as srv:
        for m, tasks in task_sets.items():
            got, took = timed(evaluate(srv.base_url, srv.model, tasks, m, concurrency=concurrency))
            graded += got
            seconds += took
    summary = summarize(graded, seconds)
    if report:
        write_report(report, graded, summary)
    typer.echo(json.dumps(summary, indent=1))


@app.command("demo")
def demo_command(
    task: Annotated[str | None, typer.Option(help="Another task over the demo workspace.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Use a running server instead of "
                                                  "starting the embedded one.")] = None,
    model: Annotated[str, typer.Option(help="Model id (with --base-url).")] = "openk2-embedded",
    run_dir: Annotated[Path, typer.Option(help="Where the run's log is kept.")] = Path("runs"),
) -> None:
    """Serve the embedded model and run an agent swarm over the demo workspace, offline."""
    import asyncio
    import contextlib
    import sys
    import time

    from openk2.embedded.demo import DEMO_TASK, demo_workspace, expected_answer, run_demo
    from openk2.embedded.server import LocalServer, local_server

    typer.echo(f"task: {task or DEMO_TASK}\nworkspace: {demo_workspace()}")
    server = (contextlib.nullcontext(LocalServer(base_url, model)) if base_url
              else local_server())
    if not base_url:
        typer.echo("starting `openk2 serve --model embedded` ...")
    with server as srv:
        typer.echo(f"server: {srv.base_url} (model {srv.model})")
        start = time.perf_counter()
        outcome = asyncio.run(run_demo(srv.base_url, srv.model, task=task or DEMO_TASK,
                                       run_dir=run_dir, progress=sys.stderr.isatty()))
        seconds = time.perf_counter() - start
    _print_summary(outcome, seconds, run_dir)
    if task is None:
        ok = outcome.answer.strip() == expected_answer()
        typer.echo(f"answer matches the workspace files: {'yes' if ok else 'NO'}")


def _print_summary(outcome: object, seconds: float, run_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from openk2.agent.swarm.runtime import SwarmOutcome

    assert isinstance(outcome, SwarmOutcome)
    table = Table(title=f"run {outcome.run_id}: {outcome.state}")
    for col in ("sub-agent", "state", "steps", "result"):
        table.add_column(col)
    for res in outcome.agents:
        table.add_row(res.agent_id, res.state, str(res.steps), res.output.strip()[:60])
    acc = outcome.accounting
    console = Console()
    console.print(table)
    console.print(f"answer:\n{outcome.answer}")
    console.print(
        f"agents {len(outcome.agents)} | steps {acc.total_steps} | critical steps "
        f"{acc.critical_steps} | tokens {acc.usage.total_tokens} "
        f"({acc.usage.prompt_tokens} prompt, {acc.usage.completion_tokens} completion) | "
        f"{seconds:.1f} s | log {run_dir / outcome.run_id}")
