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
    from openk2.route.proxy import serve

    try:
        cfg = load_config(config)
    except (ValueError, KeyError, TypeError) as exc:
        typer.echo(f"error: {config}: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    serve(cfg, host, port)
