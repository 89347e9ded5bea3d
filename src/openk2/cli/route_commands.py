"""`openk2 route`: the routing proxy in front of several OpenAI-compatible deployments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app


@app.command("route")
def route(
    config: Annotated[Path, typer.Option("--config", exists=True, dir_okay=False,
                                         help="Router YAML (deployments, groups, rules).")],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8100,
) -> None:
    """Serve /v1/chat/completions, routing each request by rules, strategy and health."""
    from openk2.route.config import load_config
    from openk2.route.proxy import Router, serve

    try:
        router = Router(load_config(config))
    except (ValueError, KeyError, TypeError) as exc:
        typer.echo(f"error: {config}: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    serve(router, host, port)


@app.command("route-train")
def route_train(
    eval_dir: Annotated[Path, typer.Option("--eval", exists=True, file_okay=False,
                                           help="A finished `openk2 eval` run directory "
                                                "(report.json + samples.jsonl).")],
    weak: Annotated[str, typer.Option(help="Eval endpoint name of the cheap model.")],
    strong: Annotated[str, typer.Option(help="Eval endpoint name of the strong model.")],
    out: Annotated[Path, typer.Option(help="Model file for `strategy: learned`.")],
    l2: Annotated[float, typer.Option(help="L2 regularisation strength.")] = 1e-3,
    features: Annotated[str, typer.Option(
        help="hashed (word n-grams, numpy only) or embedding (all-MiniLM-L6-v2 sentence "
             "embeddings; needs the `embed` extra).")] = "hashed",
) -> None:
    """Train the learned (win-score) router on an eval run: per task, did the weak endpoint
    do as well as the strong one? A logistic regression over prompt features."""
    from openk2.evals.outcomes import win_examples
    from openk2.route.learned import train

    try:
        examples = win_examples(eval_dir, weak, strong)
        model = train(examples, weak=weak, strong=strong, l2=l2, features=features)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    model.save(out)
    wins = sum(label for _, label in examples)
    typer.echo(f"trained on {len(examples)} tasks ({wins:.0f} where {weak} did as well as "
               f"{strong}; {features} features); wrote {out}")
