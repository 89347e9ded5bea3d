"""`openk2 code`: the terminal coding agent (headless with `-p`; see `openk2.code`).

Only this module knows about the embedded model: `--model embedded` without `--base-url`
starts `openk2 serve --model embedded` as a child process (as `openk2 demo` does) and points
the agent at it; `openk2.code` itself only ever sees a provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from openk2.cli import app

_EMBEDDED_CONTEXT = 4096
"""The context window of `openk2 serve --model embedded` (its default --max-model-len)."""


class _TaskOrSubcommand(TyperGroup):
    """`openk2 code "TASK"` and `openk2 code bench ...` side by side.

    Click parses a group's own arguments before it looks for the subcommand, so the optional
    TASK argument would take `bench` as the task; a first word that names a subcommand is
    that subcommand instead (the group's options keep their defaults, as they are unused).
    Options may follow the task (`openk2 code "fix it" --mode auto`), as they may follow `-p`.
    """

    allow_interspersed_args = True

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            return super().parse_args(ctx, args)
        super().parse_args(ctx, [])
        ctx._protected_args, ctx.args = args[:1], args[1:]
        return ctx.args


code_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                       cls=_TaskOrSubcommand,
                       help="A coding agent in your terminal (`openk2 code bench` scores it).")
app.add_typer(code_app, name="code")


@code_app.callback(invoke_without_command=True)
def code_command(
    ctx: typer.Context,
    task: Annotated[str | None, typer.Argument(
        metavar="TASK", help="First message: opens the interactive session with it, or runs "
        "it headless like -p when there is no terminal.")] = None,
    prompt: Annotated[str | None, typer.Option("-p", "--prompt", help="Run this task headless "
                                               "and exit.")] = None,
    output_format: Annotated[str, typer.Option(help="text, json (one summary object) or "
                                               "stream-json (one event per line).")] = "text",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id; 'embedded' starts the shipped "
                                              "model locally.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Bearer key for the endpoint.")] = None,
    workspace: Annotated[Path | None, typer.Option("-w", "--workspace", help="Working "
                                                   "directory (default: the current one).")] = None,
    add_dir: Annotated[list[Path] | None, typer.Option(help="Another directory the agent may "
                                                       "use (repeatable).")] = None,
    mode: Annotated[str | None, typer.Option(help="manual (default), auto or yolo.")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="LLM calls before the run "
                                                  "stops.")] = None,
    no_sandbox: Annotated[bool, typer.Option("--no-sandbox", help="Run shell commands without "
                                             "the OS sandbox (dangerous).")] = False,
    resume: Annotated[str | None, typer.Option("-r", "--resume", help="Continue session "
                                               "ID.")] = None,
    continue_last: Annotated[bool, typer.Option("-C", "--continue", help="Continue this "
                                                "workspace's last session.")] = False,
    context_window: Annotated[int | None, typer.Option(help="Model context window in "
                                                       "tokens.")] = None,
    thinking: Annotated[bool | None, typer.Option("--thinking/--no-thinking", help="Ask for "
                                                  "thinking on or off (default: the "
                                                  "endpoint's).")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="tiktoken.model (or its directory) to "
                                                  "count tokens exactly.")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(help="Host shell commands may reach "
                                                         "(repeatable; default: no network).")]
    = None,
    mcp_config: Annotated[Path | None, typer.Option(help="JSON file of MCP servers, stdio or HTTP "
                                                    "({\"mcpServers\": {...}}).")] = None,
    swarm: Annotated[bool, typer.Option("--swarm", help="Give the agent the swarm tools "
                                        "(read-only workers).")] = False,
    rewind: Annotated[str | None, typer.Option(help="Restore snapshot ID (see /undo) and cut "
                                               "the session (--resume ID, else the last one) "
                                               "back to before it.")] = None,
) -> None:
    """A coding agent in your terminal: reads, edits and runs code in the workspace."""
    import asyncio

    if ctx.invoked_subcommand is not None:
        return
    from openk2.code.config import ConfigError

    try:
        job = _prepare({k: v for k, v in locals().items() if k != "ctx"})
    except _Done:
        raise typer.Exit(code=0) from None
    except (ConfigError, ValueError) as exc:
        typer.echo(f"openk2 code: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    try:
        code = asyncio.run(_run(job))
    except (ConfigError, ValueError) as exc:
        typer.echo(f"openk2 code: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    raise typer.Exit(code=code)


class _Done(Exception):
    """The options asked for nothing more to run (a rewind without a new task)."""


def _rewind(store: Any, ws: Any, session_id: str, snapshot_id: str) -> str:
    """`--rewind ID`: restore the snapshot, cut the session back; the session id to resume."""
    from openk2.code.rewind import rewind, snapshot_store

    done = rewind(store, session_id, snapshot_store(ws.root), snapshot_id)
    typer.echo(f"rewound session {session_id}: files restored to snapshot {done.snapshot[:12]}, "
               f"{done.dropped} later messages dropped (the files as they were before the "
               f"rewind are snapshot {done.undo_id[:12]})", err=True)
    return session_id


def _prepare(opts: dict[str, Any]) -> dict[str, Any]:
    """Check the options, resolve the workspace, settings and session before anything runs."""
    import sys

    from openk2.code.config import ConfigError, load_settings
    from openk2.code.output import FORMATS
    from openk2.code.sessions import SessionStore
    from openk2.code.workspace import Workspace

    if opts["output_format"] not in FORMATS:
        raise ConfigError(f"--output-format must be one of {', '.join(FORMATS)}")
    ws = Workspace.open(opts["workspace"] or Path.cwd(), tuple(opts["add_dir"] or ()))
    keys = ("base_url", "model", "api_key", "mode", "max_steps", "context_window", "tokenizer",
            "thinking")
    flags = {k: opts[k] for k in keys} | {"allowed_hosts": opts["allow_host"] or None,
                                          "swarm": opts["swarm"] or None}
    settings = load_settings(flags, ws.root)
    store = SessionStore()
    resume = opts["resume"] or (store.last(ws.root) if opts["continue_last"] else None)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    opts = _place_task(opts, tty)
    interactive = opts["prompt"] is None and tty
    if opts["rewind"] is not None:
        resume = _rewind(store, ws, resume or store.last(ws.root), opts["rewind"])
        if opts["prompt"] is None and not interactive:
            raise _Done()
    if opts["prompt"] is None and resume is None and not interactive:
        raise ConfigError("give a task (openk2 code \"...\" or -p \"...\"; or --resume / "
                          "--continue a session); the interactive mode needs a terminal")
    from openk2.code.mcp_tools import load_mcp_config, parse_servers

    servers = parse_servers(settings.mcp_servers)
    if opts["mcp_config"] is not None:
        servers += load_mcp_config(opts["mcp_config"])
    opts = {**opts, "interactive": interactive, "mcp_servers": servers}
    return {**opts, "workspace": ws, "settings": settings, "store": store, "resume": resume}


def _place_task(opts: dict[str, Any], tty: bool) -> dict[str, Any]:
    """A positional TASK is the interactive session's first message on a terminal, else the
    headless prompt (as `-p`); giving it and `-p` both is ambiguous."""
    from openk2.code.config import ConfigError

    task = opts["task"]
    if task is not None and opts["prompt"] is not None:
        raise ConfigError("give the task either as an argument or with -p, not both")
    if task is None or tty:
        return opts
    return {**opts, "prompt": task, "task": None}


async def _run(job: dict[str, Any]) -> int:
    from openk2.code.headless import run_headless
    from openk2.code.output import Reporter
    from openk2.code.safety import build_safety

    made_safety: list[Any] = []

    def make_safety(asker: Any = None) -> Any:
        safety = build_safety(job["settings"], job["workspace"], sandbox=not job["no_sandbox"],
                              asker=asker)
        made_safety.append(safety)
        if banner := getattr(safety.launcher, "banner", None):
            typer.secho(banner, err=True, fg="red", bold=True)
        return safety

    safety = None if job["interactive"] else make_safety()
    with _provider(job) as (provider, settings):
        try:
            async with _mcp(job) as extra:
                if job["interactive"]:
                    await _interactive(job, settings, provider, make_safety, extra)
                    return 0
                summary = await run_headless(
                    settings, job["workspace"], prompt=job["prompt"], resume=job["resume"],
                    provider=provider, safety=safety, reporter=Reporter(job["output_format"]),
                    store=job["store"], extra_tools=extra)  # fmt: skip
        finally:
            await provider.aclose()
            for made in made_safety:
                made.launcher.close()
    return summary.exit_code


@contextlib.asynccontextmanager
async def _mcp(job: dict[str, Any]) -> AsyncIterator[list[Any]]:
    """The MCP servers' tools for the run (nothing imported when none is configured)."""
    if not job["mcp_servers"]:
        yield []
        return
    from openk2.code.mcp_tools import mcp_tools

    async with mcp_tools(job["mcp_servers"], job["workspace"].root) as tools:
        yield tools


async def _interactive(job: dict[str, Any], settings: Any, provider: Any,
                       make_safety: Any, extra: list[Any]) -> None:
    from rich.console import Console

    from openk2.code.interactive import run_interactive
    from openk2.code.ui.prompt_input import prompt_session

    prompt = prompt_session(job["store"].root / "prompt_history")
    read_line = _first_line(job["task"], prompt.prompt_async)
    await run_interactive(settings, job["workspace"], provider=provider, make_safety=make_safety,
                          store=job["store"], resume=job["resume"], console=Console(),
                          read_line=read_line, extra_tools=extra)


def _first_line(task: str | None, read_line: Any) -> Any:
    """`read_line`, except that the first call answers `task` (when given) as if typed."""
    pending = [task] if task is not None else []

    async def read(message: str) -> str:
        return pending.pop() if pending else await read_line(message)

    return read


@contextlib.contextmanager
def _provider(job: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """The HTTP provider; for `--model embedded` without a URL, a local embedded server's."""
    from openk2.code.headless import make_provider

    with endpoint(job["settings"], job["context_window"]) as settings:
        yield make_provider(settings), settings


@contextlib.contextmanager
def endpoint(settings: Any, context_window: int | None) -> Iterator[Any]:
    """`settings` as given, or, for `--model embedded` without a URL, pointed at a local
    `openk2 serve --model embedded` child that lives as long as the block."""
    import dataclasses

    if settings.model != "embedded" or settings.base_url:
        yield settings
        return
    from openk2.embedded import model_dir
    from openk2.embedded.server import local_server

    typer.echo("starting `openk2 serve --model embedded` ...", err=True)
    with local_server() as srv:
        changes: dict[str, Any] = {"base_url": srv.base_url, "model": srv.model}
        if context_window is None:
            changes["context_window"] = _EMBEDDED_CONTEXT
        if not settings.tokenizer:
            changes["tokenizer"] = str(model_dir())
        yield dataclasses.replace(settings, **changes)
