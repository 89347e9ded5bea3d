"""Sub-agents for the Task tool: their own context, the parent's gate, only a summary back.

An `explore` sub-agent gets the read-only tools (ReadFile, Glob, Grep) and a gate that refuses
everything but reads: with the guard, a copy of the session's policy in `manual` mode with no
one to ask (so every write and command is denied by the guard itself), and in front of any
gate a `ReadOnlyGate`. A `coder` sub-agent gets the full tool set behind the parent's own gate
and approver (same mode, writable roots, approvals, snapshots). Both log every step into the
parent's session log as `subagent` records (which a resume skips: they are not the parent's
conversation), their denials count as the parent's, and their token usage is added to it.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from openk2.agent.llm.message import Completion, ToolCall, Usage, system, user
from openk2.agent.llm.provider import ChatProvider, GenerationSettings, ProviderError
from openk2.agent.loop.runner import AgentRunner, MaxStepsReachedError, RunHooks
from openk2.agent.loop.step import current_tool_call
from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action, Approver, DenyAsks, GatedToolset, ToolGate, Undone, Verdict
from openk2.code.sessions import SessionLog
from openk2.code.tools.base import CodeTool, ShellLauncher, TodoBoard
from openk2.code.workspace import Workspace

if TYPE_CHECKING:
    from openk2.code.code_swarm import SessionSwarm

SubagentType: TypeAlias = Literal["explore", "coder"]
READ_ONLY_TOOLS = ("ReadFile", "Glob", "Grep")
Emit: TypeAlias = Callable[..., None]


class ReadOnlyGate:
    """A gate in front of another that denies every action but a file read."""

    def __init__(self, inner: ToolGate) -> None:
        self.inner = inner

    async def review(self, action: Action) -> Verdict:
        """Reads go to the inner gate (credential stores stay denied); the rest is refused."""
        if action.kind != "read":
            return Verdict("deny", "explore sub-agents are read-only", "subagent:read-only")
        return await self.inner.review(action)

    async def settled(self, action: Action, verdict: Verdict) -> None:
        """Reads take no snapshot; the inner gate audits."""
        await self.inner.settled(action, verdict)

    async def after(self, action: Action, tool_input: dict[str, Any], output: str
                    ) -> str | Undone | None:
        """The inner gate's post-run checks and PostToolUse hooks."""
        return await self.inner.after(action, tool_input, output)

    async def stop(self) -> str | None:
        """Stop hooks are the parent's business."""
        return None


def read_only_gate(gate: ToolGate) -> ToolGate:
    """`gate` restricted to reads: by the guard's policy where it is a `GuardGate`, and by a
    `ReadOnlyGate` in front in every case."""
    from openk2.code.safety import GuardGate

    if isinstance(gate, GuardGate):
        guard = gate.gate
        policy = dataclasses.replace(guard.policy, mode="manual")
        gate = GuardGate(dataclasses.replace(guard, policy=policy, asker=None, denied=[]),
                         gate.workspace, snapshots=None)
    return ReadOnlyGate(gate)


@dataclasses.dataclass(kw_only=True, slots=True)
class SubagentHost:
    """What sub-agents share with the session that starts them (built in `build.py`)."""

    provider: ChatProvider
    workspace: Workspace
    launcher: ShellLauncher
    gate: ToolGate
    approver: Approver
    log: SessionLog
    settings: GenerationSettings | None = None
    max_steps: int = 50
    parent: GatedToolset | None = None
    """The parent's toolset: sub-agent denials are added to its `denials`."""
    emit: Emit | None = None
    """The session's event stream (set by `CodeSession`)."""
    usage: Usage = dataclasses.field(default_factory=Usage)
    """Tokens the sub-agents used since the parent's run began."""
    swarm: SessionSwarm | None = None
    """The session's swarm tools' runtime, when they are on (`--swarm`)."""
    _ids: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    def begin_run(self) -> None:
        """The parent starts a run: usage is counted afresh (as the runner's own)."""
        self.usage = Usage()
        if self.swarm is not None:
            self.swarm.begin_run()

    def run_usage(self) -> Usage:
        """Tokens of the Task sub-agents and swarm workers since the parent's run began."""
        return self.usage + (self.swarm.usage() if self.swarm is not None else Usage())

    def toolset(self, kind: SubagentType) -> GatedToolset:
        """The tools and gate of a sub-agent of `kind`."""
        from openk2.code.tools import default_tools

        tools: list[CodeTool[Any]] = default_tools(self.workspace, self.launcher, TodoBoard())
        if kind == "explore":
            tools = [t for t in tools if t.name in READ_ONLY_TOOLS]
            return GatedToolset(tools, read_only_gate(self.gate), DenyAsks())
        return GatedToolset(tools, self.gate, self.approver)

    async def run(self, kind: SubagentType, description: str, prompt: str) -> ToolResult:
        """Run one sub-agent to its answer; the answer (or why there is none) is the result."""
        # unique within the log across resumes (the counter restarts with the process)
        agent_id = f"{kind}-{next(self._ids)}-{secrets.token_hex(2)}"
        toolset = self.toolset(kind)
        toolset.on_verdict = lambda c, a, v: self.record(agent_id, "verdict", call_id=c.id,
                                                          tool=c.name, action=a.summary,
                                                          decision=v.decision, reason=v.reason)
        history = [system(_prompt(kind, self.workspace)), user(prompt)]
        ctx = current_tool_call.get()  # the parent's Task call (a rewind cuts before it)
        self.record(agent_id, "start", subagent_type=kind, description=description,
                     prompt=prompt, parent_call=ctx.call.id if ctx is not None else None)
        runner = AgentRunner(self.provider, toolset, history, agent_id=agent_id,
                             max_steps=self.max_steps, settings=self.settings,
                             hooks=_NestedHooks(self, agent_id))
        try:
            return await self._outcome(agent_id, runner)
        finally:
            self.usage = self.usage + runner.usage
            if self.parent is not None:
                self.parent.denials.extend(toolset.denials)

    async def _outcome(self, agent_id: str, runner: AgentRunner) -> ToolResult:
        try:
            outcome = await runner.run()
        except MaxStepsReachedError as exc:
            return self._end(agent_id, runner, "max_steps",
                             f"sub-agent stopped after {exc.steps} steps without an answer")
        except ProviderError as exc:
            return self._end(agent_id, runner, "error", f"sub-agent's model call failed: {exc}")
        if outcome.stop_reason == "tool_call_repeat":
            return self._end(agent_id, runner, "loop", "sub-agent repeated the same calls")
        return self._end(agent_id, runner, "completed", outcome.text)

    def _end(self, agent_id: str, runner: AgentRunner, status: str, text: str) -> ToolResult:
        self.record(agent_id, "end", status=status, result=text, steps=runner.steps,
                     usage=runner.usage.to_dict())
        if status != "completed":
            return ToolError(text, brief=status)
        return ToolOk(text or "(the sub-agent gave no summary)", brief=f"{runner.steps} steps")

    def record(self, agent_id: str, event: str, **data: Any) -> None:
        self.log.append("subagent", agent=agent_id, event=event, **data)
        if self.emit is not None:
            self.emit("subagent", agent=agent_id, event=event, **data)


def _prompt(kind: SubagentType, workspace: Workspace) -> str:
    template = (Path(__file__).parent / "agents" / kind / "system.md").read_text("utf-8")
    return template.format(workspace=workspace.root,
                           extra_dirs=", ".join(map(str, workspace.extra)) or "none")


class _NestedHooks(RunHooks):
    """A sub-agent's steps into the parent's log, tagged with its id."""

    def __init__(self, host: SubagentHost, agent_id: str) -> None:
        self.host = host
        self.agent_id = agent_id

    async def after_llm(self, runner: AgentRunner, completion: Completion) -> None:
        self.host.record(self.agent_id, "message", message=completion.message.to_openai(),
                          usage=completion.usage.to_dict())

    async def after_tool(self, runner: AgentRunner, call: ToolCall, result: ToolResult) -> None:
        self.host.record(self.agent_id, "tool_result", call_id=call.id, tool=call.name,
                          ok=not isinstance(result, ToolError), output=result.output)
