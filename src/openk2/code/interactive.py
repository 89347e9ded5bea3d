"""`openk2 code` without `-p`: the interactive shell over one (resumable) session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rich.console import Console

from openk2.agent.guard import Asker
from openk2.agent.llm.provider import ChatProvider
from openk2.code.build import Safety, open_session
from openk2.code.config import CodeSettings
from openk2.code.headless import token_counter
from openk2.code.sessions import SessionStore
from openk2.code.tools.base import CodeTool
from openk2.code.ui.render import Renderer, asker
from openk2.code.ui.shell import InteractiveShell, ShellState
from openk2.code.workspace import Workspace

ReadLine = Callable[[str], Awaitable[str]]


async def run_interactive(
    settings: CodeSettings,
    workspace: Workspace,
    *,
    provider: ChatProvider,
    make_safety: Callable[[Asker], Safety],
    store: SessionStore,
    resume: str | None,
    console: Console,
    read_line: ReadLine,
    extra_tools: Sequence[CodeTool[Any]] = (),
) -> None:
    """Run the shell until the user leaves; every turn is logged like a headless run."""
    safety = make_safety(asker(console, read_line))
    render = Renderer(console)
    count = token_counter(settings)

    def new_session(resume_id: str | None = None):
        return open_session(settings, workspace, provider=provider, safety=safety, store=store,
                            resume=resume_id, emit=render, count=count, extra_tools=extra_tools,
                            stream=True)

    state = ShellState(session=new_session(resume), new_session=new_session, store=store,
                       workspace=workspace.root, settings=settings)
    try:
        await InteractiveShell(state, console, read_line).run()
    finally:
        state.session.log.close()
