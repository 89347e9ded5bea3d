"""One coding run: restore or start a session, loop the agent, log everything, summarise.

`CodeSession` wires the pieces the loop does not know about into `AgentRunner`'s hooks:
every message is fsynced to the session log as it appears (assistant messages before their
tools run, each tool result as it returns), compaction runs before a call that would pass the
threshold, and each event also goes to the caller's `emit` (the stream-json printer). How the
run ended becomes a `RunStatus`, and the status an exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from openk2.agent.llm.message import Completion, Message, ToolCall, Usage, tool_result
from openk2.agent.llm.provider import ChatProvider, GenerationSettings, ProviderError
from openk2.agent.loop.events import AssistantDelta, Wire
from openk2.agent.loop.runner import AgentRunner, MaxStepsReachedError, RunHooks
from openk2.agent.loop.step import current_tool_call
from openk2.agent.tools.base import ToolError, ToolResult
from openk2.code.compaction import Compactor
from openk2.code.gate import Action, GatedToolset, Verdict
from openk2.code.sessions import SCHEMA_VERSION, SessionLog, restore
from openk2.code.tools.base import TodoBoard

if TYPE_CHECKING:
    from openk2.code.subagents import SubagentHost

RunStatus: TypeAlias = Literal["completed", "denied", "max_steps", "loop", "error"]
EXIT_CODES: dict[RunStatus, int] = {
    "completed": 0, "error": 1, "denied": 3, "max_steps": 4, "loop": 5,
}  # fmt: skip
"""Exit status per outcome (2 is left to usage errors, as typer uses it)."""

Emit: TypeAlias = Callable[[dict[str, Any]], None]


@dataclass(kw_only=True, slots=True)
class RunSummary:
    """What a run did, for `--output-format json` and the exit status."""

    session_id: str
    status: RunStatus
    result: str
    steps: int
    tool_calls: int
    denied: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """The process exit status for this outcome."""
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary object (also the last stream-json event)."""
        return {
            "v": SCHEMA_VERSION, "type": "result", "session_id": self.session_id,
            "status": self.status, "result": self.result, "steps": self.steps,
            "tool_calls": self.tool_calls, "denied_calls": self.denied,
            "usage": self.usage.to_dict(), "error": self.error, "exit_code": self.exit_code,
        }  # fmt: skip


@dataclass(kw_only=True, slots=True)
class SessionParts:
    """What a `CodeSession` is made of (built by `openk2.code.build`)."""

    provider: ChatProvider
    toolset: GatedToolset
    log: SessionLog
    history: list[Message]
    compactor: Compactor
    todos: TodoBoard
    settings: GenerationSettings | None = None
    max_steps: int = 100
    repeat_limit: int = 5
    subagents: SubagentHost | None = None
    """Runs the Task tool's sub-agents; their usage is added to each run's."""


class CodeSession:
    """Runs the agent over a session's history until it answers, is stopped, or fails."""

    def __init__(self, parts: SessionParts, emit: Emit | None = None,
                 stream: bool = False) -> None:
        self.parts = parts
        self.log = parts.log
        self._emit_fn = emit
        self.tool_calls = 0
        self.last_usage: Usage | None = None
        parts.toolset.on_verdict = self._on_verdict
        if parts.subagents is not None:
            parts.subagents.emit = self.emit
        if hasattr(parts.toolset.gate, "on_snapshot"):
            parts.toolset.gate.on_snapshot = self._on_snapshot
        self.wire: Wire | None = None
        if stream:  # answer text as it arrives, as `delta` events (the interactive UI)
            self.wire = Wire()
            self.wire.subscribe(self._on_wire)

    def _on_wire(self, event: object) -> None:
        if isinstance(event, AssistantDelta) and event.kind == "text":
            self.emit("delta", text=event.text)

    def recover(self) -> None:
        """After a run was cancelled mid-step (Ctrl-C): the conversation as the log has it,
        with the cut-short calls answered "interrupted", exactly as a resume after a crash."""
        restored = restore(self.log.path)
        for m in restored.repaired:
            self.log.message(m)
        self.parts.history[:] = restored.history
        self.emit("interrupted", repaired=len(restored.repaired))

    def emit(self, kind: str, **data: Any) -> None:
        """Send one event to the caller's stream (schema-versioned)."""
        if self._emit_fn is not None:
            self._emit_fn({"v": SCHEMA_VERSION, "type": kind, **data})

    def add_user(self, text: str) -> None:
        """Append the user's prompt to the conversation (and the log)."""
        message = Message(role="user", content=text)
        self.parts.history.append(message)
        self.log.message(message)
        self.emit("user", text=text)

    async def run(self, stop_rounds: int = 3, denials_from: int | None = None) -> RunSummary:
        """Loop until done; every way of ending becomes a summary, none an exception.

        A Stop hook that objects sends the agent back to work, at most `stop_rounds` times."""
        p = self.parts
        runner = AgentRunner(p.provider, p.toolset, p.history, max_steps=p.max_steps,
                             settings=p.settings, hooks=_Hooks(self), repeat_limit=p.repeat_limit,
                             wire=self.wire)
        denials_before = len(p.toolset.denials) if denials_from is None else denials_from
        if p.subagents is not None:
            p.subagents.begin_run()
        try:
            outcome = await runner.run()
        except MaxStepsReachedError as exc:
            last = exc.last.content if exc.last else ""
            return self._finish(runner, "max_steps", last, f"stopped after {exc.steps} steps")
        except ProviderError as exc:
            return self._finish(runner, "error", "", f"model call failed: {exc}")
        if outcome.stop_reason == "no_tool_calls" and (more := await self._stop_hook()):
            return await self._keep_going(runner, outcome.text, more, stop_rounds, denials_before)
        status: RunStatus = "loop" if outcome.stop_reason == "tool_call_repeat" else "completed"
        if status == "completed" and len(p.toolset.denials) > denials_before:
            status = "denied"
        return self._finish(runner, status, outcome.text, None)

    async def _keep_going(self, runner: AgentRunner, text: str, objection: str, rounds: int,
                          denials_from: int) -> RunSummary:
        """A Stop hook objected: hand its reason to the model and run on (or give up)."""
        if rounds <= 0:
            return self._finish(runner, "error", text, f"Stop hooks still object: {objection}")
        self.parts.history[:] = runner.history
        self.add_user(f"[Stop hook] Not done yet: {objection}")
        return await self.run(rounds - 1, denials_from)

    async def _stop_hook(self) -> str | None:
        return await self.parts.toolset.gate.stop()

    def _finish(self, runner: AgentRunner, status: RunStatus, result: str,
                error: str | None) -> RunSummary:
        self.parts.history[:] = runner.history
        summary = RunSummary(
            session_id=self.log.id, status=status, result=result, steps=runner.steps,
            tool_calls=self.tool_calls, denied=[_denial(d.call, d.action, d.verdict)
                                                for d in self.parts.toolset.denials],
            usage=runner.usage + self._subagent_usage(), error=error)  # fmt: skip
        data = {k: v for k, v in summary.to_dict().items() if k not in ("v", "type")}
        self.log.append("end", **data)
        self.emit("result", **data)
        return summary

    def _on_snapshot(self, snapshot_id: str) -> None:
        """Log which call a snapshot was taken before, so `--rewind` can cut there."""
        ctx = current_tool_call.get()
        agent, call_id = (ctx.agent_id, ctx.call.id) if ctx is not None else ("main", None)
        self.log.append("snapshot", id=snapshot_id, agent=agent, call_id=call_id)

    def _subagent_usage(self) -> Usage:
        host = self.parts.subagents
        return host.run_usage() if host is not None else Usage()

    def _on_verdict(self, call: ToolCall, action: Action, verdict: Verdict) -> None:
        data = _denial(call, action, verdict) | {"decision": verdict.decision}
        self.log.append("verdict", **data)
        self.emit("verdict", **data)

    async def compact_if_needed(self, runner: AgentRunner) -> None:
        """Before a call: summarise older steps when the context passed the threshold."""
        if self.parts.compactor.needed(runner.history, self.last_usage):
            runner.history = await self.compact(runner.history)

    async def compact(self, history: list[Message] | None = None) -> list[Message]:
        """Summarise the older steps now (`/compact`, or past the threshold); the new
        conversation is logged and becomes the session's. Unchanged if nothing can be cut."""
        c = self.parts.compactor
        history = self.parts.history if history is None else history
        before = c.size(history, self.last_usage)
        compacted = await c.compact(self.parts.provider, history)
        if len(compacted) == len(history):
            return history
        self.log.append("compaction", messages=[m.to_openai() for m in compacted])
        self.emit("compaction", tokens_before=before, tokens_after=c.size(compacted, None),
                  messages_before=len(history), messages_after=len(compacted))
        self.parts.history[:] = compacted
        self.last_usage = None
        return compacted

    def record_completion(self, step: int, completion: Completion) -> None:
        """Log the assistant message before any of its tools runs."""
        self.last_usage = completion.usage
        m = completion.message
        self.log.message(m)
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
        self.emit("assistant", step=step, text=m.content, reasoning=m.reasoning_content,
                  tool_calls=calls, usage=completion.usage.to_dict())

    def record_tool(self, call: ToolCall, result: ToolResult) -> None:
        """Log one tool result the moment it exists (so resume never re-runs the call)."""
        self.tool_calls += 1
        self.log.message(tool_result(call.id, result.output))
        if call.name == "SetTodoList" and not isinstance(result, ToolError):
            self.log.append("todos", todos=[t.model_dump() for t in self.parts.todos.items])
        self.emit("tool_result", call_id=call.id, tool=call.name,
                  ok=not isinstance(result, ToolError), output=result.output, brief=result.brief)


def _denial(call: ToolCall, action: Action, verdict: Verdict) -> dict[str, Any]:
    return {"call_id": call.id, "tool": call.name, "action": action.summary,
            "reason": verdict.reason, "rule": verdict.rule}


class _Hooks(RunHooks):
    """Routes the loop's phases to the session (log, events, compaction)."""

    def __init__(self, session: CodeSession) -> None:
        self.session = session

    async def before_step(self, runner: AgentRunner) -> None:
        await self.session.compact_if_needed(runner)

    async def after_llm(self, runner: AgentRunner, completion: Completion) -> None:
        self.session.record_completion(runner.steps, completion)

    async def after_tool(self, runner: AgentRunner, call: ToolCall, result: ToolResult) -> None:
        self.session.record_tool(call, result)
