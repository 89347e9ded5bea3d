"""The `openk2` command line: the composition root.

Each area registers its subcommands from its own module in this package, so the root stays a
list of imports. Command modules import heavy packages (torch, fastapi) inside the command
functions, which keeps `openk2 --help` fast.
"""

from __future__ import annotations

import warnings
from typing import Any

import typer

app = typer.Typer(
    name="openk2",
    help="Run, inspect, serve, train and build agents on Kimi K2.6-architecture models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Keep `openk2` a command group even while it has a single subcommand."""


def _register_commands() -> None:
    """Import each command module; importing one adds its commands to `app`."""
    from openk2.cli import (  # noqa: F401
        chat_commands,
        code_bench_commands,
        code_commands,
        deploy_commands,
        embedded_commands,
        embedded_vision_commands,
        eval_commands,
        media_commands,
        model_commands,
        route_commands,
        serve_commands,
        swarm_commands,
        tokenizer_commands,
        train_commands,
        weights_commands,
    )


@app.command()
def version() -> None:
    """Print the openk2 version."""
    from openk2 import __version__

    typer.echo(__version__)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    """Warnings reach CLI users as notes (e.g. a deprecated `--dtype` spelling), so they are
    shown as one line rather than as a source-code listing of where they were raised."""
    return f"{category.__name__}: {message}\n"


def main() -> None:
    """Console-script entry point."""
    warnings.formatwarning = _one_line_warning
    _register_commands()
    app()
