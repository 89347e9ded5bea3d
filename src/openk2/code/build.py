"""Assemble a `CodeSession`: new or resumed, with its tools behind the gate.

Kept apart from `app.py` so the CLI, the interactive shell and the tests build sessions the
same way while choosing their own provider, gate, approver and shell launcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openk2.agent.llm.message import Message, system
from openk2.agent.llm.provider import ChatProvider
from openk2.code.app import CodeSession, Emit, SessionParts
from openk2.code.code_swarm import SessionSwarm
from openk2.code.compaction import Compactor, TokenCount, approx_tokens
from openk2.code.config import CodeSettings, ConfigError
from openk2.code.gate import Approver, GatedToolset, ToolGate
from openk2.code.prompt import system_prompt
from openk2.code.sessions import SessionLog, SessionStore
from openk2.code.subagents import SubagentHost
from openk2.code.tools import default_tools
from openk2.code.tools.base import CodeTool, ShellLauncher, Todo, TodoBoard
from openk2.code.tools.task import Task
from openk2.code.workspace import Workspace


@dataclass(kw_only=True, slots=True)
class Safety:
    """The safety layers a session runs under (from `openk2.agent.guard`, or test doubles)."""

    gate: ToolGate
    approver: Approver
    launcher: ShellLauncher


def open_session(
    settings: CodeSettings,
    workspace: Workspace,
    *,
    provider: ChatProvider,
    safety: Safety,
    store: SessionStore,
    resume: str | None = None,
    emit: Emit | None = None,
    count: TokenCount = approx_tokens,
    extra_tools: Sequence[CodeTool[Any]] = (),
    stream: bool = False,
) -> CodeSession:
    """A fresh session (system prompt logged), or `resume`'s with its conversation restored."""
    todos = TodoBoard()
    log, history = _log_and_history(settings, workspace, store, resume, todos, safety)
    gen = settings.generation()
    host = SubagentHost(provider=provider, workspace=workspace, launcher=safety.launcher,
                        gate=safety.gate, approver=safety.approver, log=log, settings=gen,
                        max_steps=settings.max_steps)
    tools = [*default_tools(workspace, safety.launcher, todos), Task(host),
             *fetch_tools(settings), *extra_tools]
    toolset = GatedToolset(tools, safety.gate, safety.approver)
    host.parent = toolset
    if settings.swarm:
        host.swarm = SessionSwarm(host)
        for t in host.swarm.tools:
            toolset.add(t)
    parts = SessionParts(
        provider=provider, toolset=toolset, log=log, history=history, todos=todos,
        compactor=Compactor(window=settings.context_window, count=count), settings=gen,
        max_steps=settings.max_steps, repeat_limit=settings.repeat_limit,
        subagents=host)  # fmt: skip
    session = CodeSession(parts, emit, stream=stream)
    session.emit("session", session_id=log.id, resumed=resume is not None,
                 workspace=str(workspace.root), model=provider.model_name, mode=settings.mode,
                 sandbox=safety.launcher.sandboxed, messages=len(history))
    return session


def fetch_tools(settings: CodeSettings) -> list[CodeTool[Any]]:
    """FetchURL, when the user's `[fetch] allow` lists hosts (else no web access at all)."""
    allow = settings.fetch.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(h, str) and h for h in allow):
        raise ConfigError('[fetch] allow must be a list of host names, e.g. ["docs.python.org"]')
    if not allow:
        return []
    from openk2.code.tools.fetch_url import FetchURL

    return [FetchURL(allow)]


def _log_and_history(
    settings: CodeSettings, workspace: Workspace, store: SessionStore, resume: str | None,
    todos: TodoBoard, safety: Safety,
) -> tuple[SessionLog, list[Message]]:
    if resume is not None:
        log, restored = store.open(resume)
        todos.items = [Todo.model_validate(t) for t in restored.todos]
        return log, restored.history
    log = store.create(workspace.root, model=settings.model, mode=settings.mode,
                       extra_dirs=[str(d) for d in workspace.extra])
    prompt = system(system_prompt(workspace, sandboxed=safety.launcher.sandboxed))
    log.message(prompt)
    return log, [prompt]
