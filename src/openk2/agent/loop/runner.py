"""The agent loop: steps until the model stops calling tools, a guard fires, or a limit hits.

The loop is split into named phases (max-steps guard, `before_step` hook, LLM call,
`after_llm` hook, tools, `after_step` hook, loop guard) so that the swarm can add budgets and
durable logging through `RunHooks` without touching the loop. A runner can start from a
restored history, and `run()` first settles the step the history ends in, without an LLM call:
- it ends in an assistant answer (no tool calls): that step ended the run, so `run()` returns
  it at once (a crash between the last step and the record of completion redoes nothing);
- its last assistant message has unanswered tool calls (a step interrupted by a crash): only
  the missing calls run, then the loop goes on;
- anything else (a user or tool message last): the next step is a new LLM call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from openk2.agent.llm.message import Completion, Message, ToolCall, Usage
from openk2.agent.llm.provider import ChatProvider, GenerationSettings
from openk2.agent.loop.events import StepBegin, StepEnd, TurnEnd, Wire
from openk2.agent.loop.step import StepResult, call_llm, run_tools
from openk2.agent.tools.base import ToolOk, ToolResult, Toolset

StepStopReason: TypeAlias = Literal["no_tool_calls", "tool_rejected", "tool_call_repeat"]


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """How a run ended: stop reason, last assistant message, steps taken, usage."""

    stop_reason: StepStopReason
    message: Message
    steps: int
    usage: Usage

    @property
    def text(self) -> str:
        """The final answer text."""
        return self.message.content


class MaxStepsReachedError(Exception):
    """The agent used its step allowance without finishing."""

    def __init__(self, steps: int, last: Message | None) -> None:
        super().__init__(f"agent stopped after reaching its limit of {steps} steps")
        self.steps = steps
        self.last = last


MaxStepsReached = MaxStepsReachedError


class RunHooks:
    """Extension points of the loop; the defaults do nothing.

    Hooks may raise to stop the agent (the swarm raises `BudgetExceededError` in
    `before_step`). They may also adjust `runner.settings` before the call.
    """

    async def before_step(self, runner: AgentRunner) -> None:
        """Called before each LLM call (budgets are checked and reserved here)."""

    async def after_llm(self, runner: AgentRunner, completion: Completion) -> None:
        """Called once the assistant message is complete, before its tools run."""

    async def after_tool(self, runner: AgentRunner, call: ToolCall, result: ToolResult) -> None:
        """Called as each tool call finishes."""

    async def after_step(self, runner: AgentRunner, result: StepResult) -> None:
        """Called when the step (LLM call and all tools) is complete."""


@dataclass(kw_only=True, slots=True)
class LoopGuard:
    """Stops an agent that repeats the same calls and gets the same observations."""

    limit: int = 3
    """Identical consecutive steps that stop the agent (0 disables the guard)."""
    _last: tuple[object, ...] | None = field(default=None, init=False)
    _count: int = field(default=0, init=False)

    def repeated(self, result: StepResult) -> bool:
        """Record a step; True once `limit` identical steps happened in a row."""
        if self.limit <= 0:
            return False
        calls = tuple((c.name, c.arguments) for c in result.message.tool_calls)
        same = self._last is not None and self._last == (calls, result.results)
        self._count = self._count + 1 if same else 1
        self._last = (calls, result.results)
        return self._count >= self.limit


class AgentRunner:
    """Runs one agent over its own history (each agent has its own context)."""

    def __init__(
        self,
        provider: ChatProvider,
        toolset: Toolset,
        history: Sequence[Message],
        *,
        agent_id: str = "main",
        max_steps: int = 100,
        settings: GenerationSettings | None = None,
        wire: Wire | None = None,
        hooks: RunHooks | None = None,
        repeat_limit: int = 3,
        steps_done: int = 0,
        usage: Usage | None = None,
    ) -> None:
        self.provider = provider
        self.toolset = toolset
        self.history = list(history)
        self.agent_id = agent_id
        self.max_steps = max_steps
        self.settings = settings
        self.wire = wire
        self.hooks = hooks or RunHooks()
        self.guard = LoopGuard(limit=repeat_limit)
        self.steps = steps_done
        self.usage = usage or Usage()

    async def run(self) -> TurnOutcome:
        """Step until done; raises `MaxStepsReachedError` or whatever a hook raises."""
        result = await self._finish_interrupted_step()
        while True:
            if result is not None:
                reason = self._stop_reason(result)
                if reason is not None:
                    return self._end(reason, result.message)
            if self.steps >= self.max_steps:
                self._emit(TurnEnd(self.agent_id, "max_steps", self.steps))
                raise MaxStepsReachedError(self.steps, self.last_assistant())
            result = await self.step()

    async def step(self) -> StepResult:
        """One full step: hooks, LLM call, tools; appends everything to the history."""
        await self.hooks.before_step(self)
        self.steps += 1
        self._emit(StepBegin(self.agent_id, self.steps))
        completion = await call_llm(
            self.provider, self.history, self.toolset, self.settings, self.wire, self.agent_id
        )
        self.usage = self.usage + completion.usage
        self.history.append(completion.message)
        await self.hooks.after_llm(self, completion)
        return await self._complete_step(completion, {})

    async def _complete_step(
        self, completion: Completion, done: dict[str, ToolResult]
    ) -> StepResult:
        results = await run_tools(
            self.toolset,
            completion.message.tool_calls,
            step=self.steps,
            agent_id=self.agent_id,
            wire=self.wire,
            done=done,
            on_result=self._after_tool,
        )
        result = StepResult(completion, results)
        messages = result.tool_messages()
        self.history.extend(m for m in messages if m.tool_call_id not in done) if done \
            else self.history.extend(messages)
        await self.hooks.after_step(self, result)
        self._emit(StepEnd(self.agent_id, self.steps, completion.message, completion.usage))
        return result

    async def _after_tool(self, call: ToolCall, result: ToolResult) -> None:
        await self.hooks.after_tool(self, call, result)

    async def _finish_interrupted_step(self) -> StepResult | None:
        """The step a restored history ends in, completed without an LLM call (None if the
        history ends between steps): a final answer as is, tool calls by running the missing
        ones."""
        answer = final_answer(self.history)
        if answer is not None:
            return StepResult(Completion(answer), ())
        idx = _last_assistant_index(self.history)
        if idx is None or not self.history[idx].tool_calls:
            return None
        answered = {m.tool_call_id: m for m in self.history[idx + 1 :] if m.role == "tool"}
        message = self.history[idx]
        if all(c.id in answered for c in message.tool_calls):
            return None
        done: dict[str, ToolResult] = {
            cid: ToolOk(m.content) for cid, m in answered.items() if cid is not None
        }
        return await self._complete_step(Completion(message), done)

    def _stop_reason(self, result: StepResult) -> StepStopReason | None:
        if not result.message.tool_calls:
            return "no_tool_calls"
        if self.guard.repeated(result):
            return "tool_call_repeat"
        return None

    def _end(self, reason: StepStopReason, message: Message) -> TurnOutcome:
        self._emit(TurnEnd(self.agent_id, reason, self.steps))
        return TurnOutcome(reason, message, self.steps, self.usage)

    def last_assistant(self) -> Message | None:
        """The most recent assistant message, if any."""
        idx = _last_assistant_index(self.history)
        return None if idx is None else self.history[idx]

    def _emit(self, event: StepBegin | StepEnd | TurnEnd) -> None:
        if self.wire is not None and self.wire.active:
            self.wire.emit(event)


def final_answer(history: Sequence[Message]) -> Message | None:
    """The assistant answer `history` ends in, if it does: the step that ended a run.

    A history restored after a crash can end there when the process died between logging the
    last LLM step and recording the agent's completion; such an agent is finished, and
    calling the model again would redo its last step.
    """
    last = history[-1] if history else None
    if last is None or last.role != "assistant" or last.tool_calls:
        return None
    return last


def _last_assistant_index(history: Sequence[Message]) -> int | None:
    for i in range(len(history) - 1, -1, -1):
        if history[i].role == "assistant":
            return i
    return None
