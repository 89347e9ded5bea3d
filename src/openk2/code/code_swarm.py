"""The agent swarm as tools of a coding session: create_subagent, assign_task, swarm, ...

`openk2.agent.swarm` runs the workers (scheduling, budgets, supervision, result rendering);
this module only hands it what a coding session must keep: workers get the read-only tools
(ReadFile, Glob, Grep) behind the explore sub-agent's read-only gate, every worker event goes
into the session log as a `swarm` record, worker usage counts as the session's, and each run
of the session has its own parent id so the swarm's idempotency keys (parent, step, call id)
never match a call of an earlier turn.
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel

from openk2.agent.llm.message import Usage
from openk2.agent.loop.step import current_tool_call
from openk2.agent.swarm import Swarm, SwarmConfig
from openk2.agent.swarm.store import MemoryEventStore
from openk2.agent.swarm.tools import swarm_tools
from openk2.agent.tools.base import Tool, ToolError, ToolResult, Toolset
from openk2.code.gate import Action, GatedToolset
from openk2.code.sessions import SessionLog
from openk2.code.subagents import READ_ONLY_TOOLS, SubagentHost
from openk2.code.tools.base import CodeTool

EXPOSED = ("create_subagent", "assign_task", "swarm", "resume", "read_artifact")


class LoggedStore(MemoryEventStore):
    """The swarm's event log kept in memory and copied, record by record, to the session."""

    def __init__(self, log: SessionLog) -> None:
        super().__init__()
        self.log = log

    def append(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Keep the event and write it to the session log (fsynced) as a `swarm` record."""
        super().append(agent_id, kind, step, data)
        self.log.append("swarm", agent=agent_id, event=kind, step=step, data=data)


class WorkerTool(Tool[BaseModel]):
    """One of the session's tools as a worker sees it: every call meets the session's gate."""

    def __init__(self, inner: Tool[Any], toolset: GatedToolset) -> None:
        self.inner = inner
        self.toolset = toolset
        self.name = inner.name
        self.description = inner.description
        self.Params = inner.Params  # type: ignore[misc]

    async def run(self, params: BaseModel) -> ToolResult:
        """Review, then run (a denied call is the worker's `ToolError`, and a session denial)."""
        ctx = current_tool_call.get()
        if ctx is None:
            return ToolError("worker tools run only inside the agent loop")
        return await self.toolset.run_gated(ctx.call, self.inner, params)


class OrchestratorTool(CodeTool[BaseModel]):
    """A swarm tool in the session's toolset: starting workers is session state (each worker
    call meets the gate itself)."""

    def __init__(self, inner: Tool[Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.description = inner.description
        self.Params = inner.Params  # type: ignore[misc]

    def action(self, params: BaseModel) -> Action:
        return Action(self.name, "state", f"swarm: {self.name}", output="subagent",
                      origin=f"swarm {self.name}")  # workers read files: their words are data

    async def run(self, params: BaseModel) -> ToolResult:
        """The swarm's own tool (it reads the step and call id from the loop)."""
        return await self.inner.run(params)


class SessionSwarm:
    """One swarm per coding session; its tools act for the session's current run."""

    def __init__(self, host: SubagentHost, config: SwarmConfig | None = None) -> None:
        self.host = host
        workers = host.toolset("explore")
        if host.parent is not None:
            workers.denials = host.parent.denials  # a worker's denial is the session's
        registry = Toolset(WorkerTool(workers.get(n), workers) for n in workers.names)
        self.config = config or SwarmConfig(subagent_tools=READ_ONLY_TOOLS, max_depth=0,
                                            settings=host.settings)
        self.swarm = Swarm(host.provider, config=self.config, tools=registry,
                           store=LoggedStore(host.log))
        self._turns = itertools.count(1)
        self._inner = [t for t in swarm_tools(self.swarm, "main") if t.name in EXPOSED]
        self.tools = [OrchestratorTool(t) for t in self._inner]
        self._mark = Usage()
        self.begin_run()

    def begin_run(self) -> None:
        """A new parent id for the new run, and the usage mark it is measured from."""
        parent = f"{self.host.log.id}.run{next(self._turns)}"
        for tool in self._inner:
            tool.parent_id = parent  # type: ignore[attr-defined]
        self._mark = self.swarm.budget.usage

    def usage(self) -> Usage:
        """Tokens the workers used since the run began."""
        now, mark = self.swarm.budget.usage, self._mark
        return Usage(now.prompt_tokens - mark.prompt_tokens,
                     now.completion_tokens - mark.completion_tokens,
                     now.cached_tokens - mark.cached_tokens)
