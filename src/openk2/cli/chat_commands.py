"""`openk2 chat`: a terminal chat with tools, on any OpenAI-compatible server (by default the
embedded model, started here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openk2.cli import app


@app.command("chat")
def chat_command(
    base_url: Annotated[str | None, typer.Option(help="An OpenAI-compatible server; default: "
                                                  "start the embedded model.")] = None,
    model: Annotated[str, typer.Option(help="Model id (with --base-url).")] = "openk2-embedded",
    api_key: Annotated[str | None, typer.Option(envvar="OPENK2_API_KEY")] = None,
    workspace: Annotated[Path | None, typer.Option(
        exists=True, help="Directory or world JSON the tools work on (default: the demo one).",
    )] = None,
    system_prompt: Annotated[str | None, typer.Option("--system", help="System prompt.")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.0,
) -> None:
    """Interactive terminal chat with tools (calculator, files, key-value store)."""
    import asyncio
    import contextlib

    from openk2.embedded.server import LocalServer, local_server

    server = (contextlib.nullcontext(LocalServer(base_url, model)) if base_url
              else local_server())
    with server as srv:
        asyncio.run(_chat_loop(srv, api_key, workspace, system_prompt, temperature))


async def _chat_loop(srv: object, api_key: str | None, workspace: Path | None,
                     system_prompt: str | None, temperature: float) -> None:
    import asyncio

    from openk2.agent.llm.openai_compat import OpenAICompatProvider
    from openk2.agent.llm.provider import GenerationSettings
    from openk2.cli.chat import TerminalChat
    from openk2.cli.workspace import workspace_tools
    from openk2.embedded.demo import demo_workspace
    from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT

    provider = OpenAICompatProvider(srv.base_url, srv.model, api_key)  # type: ignore[attr-defined]
    tools = workspace_tools(workspace or demo_workspace())
    chat = TerminalChat(provider, tools, system_prompt or CLIENT_SYSTEM_PROMPT,
                        settings=GenerationSettings(temperature=temperature, max_tokens=512))
    typer.echo(f"chatting with {srv.model} at {srv.base_url}; tools: {', '.join(tools.names)}. "  # type: ignore[attr-defined]
               "Type 'reset' to start over, 'exit' or Ctrl-D to quit.")
    try:
        while True:
            try:
                line = (await asyncio.to_thread(input, "you> ")).strip()
            except EOFError:
                break
            if line in ("exit", "quit"):
                break
            if line == "reset":
                chat.reset()
                continue
            if line:
                typer.echo("openk2> ", nl=False)
                await chat.ask(line)
    finally:
        await provider.aclose()
