"""Wire events as the JSON objects the page renders (one shape for tool chats and swarm runs).

Every event carries `type` and `agent_id`; tool results carry `ok` so the page can mark
failures, and step ends carry the step's token count so the page can sum them live.
"""

from __future__ import annotations

from typing import Any

from openk2.agent.loop.events import (
    AgentFinished,
    AgentSpawned,
    AssistantDelta,
    Event,
    RateLimited,
    StepBegin,
    StepEnd,
    ToolCallFinished,
    ToolCallStarted,
)
from openk2.agent.tools.base import ToolError

MAX_SHOWN_OUTPUT = 4000
"""Characters of a tool result or step text sent to the page (the log keeps everything)."""


def event_json(event: Event) -> dict[str, Any] | None:
    """The page's view of `event`, or None for events the page does not show."""
    converter = _CONVERTERS.get(type(event))
    return converter(event) if converter else None


def _delta(ev: Any) -> dict[str, Any]:
    return {"type": "delta", "agent_id": ev.agent_id, "kind": ev.kind, "text": ev.text}


def _step(ev: Any) -> dict[str, Any]:
    return {"type": "step", "agent_id": ev.agent_id, "step": ev.step}


def _tool_call(ev: Any) -> dict[str, Any]:
    call = ev.call
    return {"type": "tool_call", "agent_id": ev.agent_id, "step": ev.step, "id": call.id,
            "name": call.name, "arguments": call.arguments}


def _tool_result(ev: Any) -> dict[str, Any]:
    return {"type": "tool_result", "agent_id": ev.agent_id, "step": ev.step, "id": ev.call.id,
            "name": ev.call.name, "ok": not isinstance(ev.result, ToolError),
            "output": ev.result.output[:MAX_SHOWN_OUTPUT]}


def _step_end(ev: Any) -> dict[str, Any]:
    return {"type": "step_end", "agent_id": ev.agent_id, "step": ev.step,
            "content": ev.message.content[:MAX_SHOWN_OUTPUT], "tokens": ev.usage.total_tokens}


def _spawned(ev: Any) -> dict[str, Any]:
    return {"type": "agent", "agent_id": ev.agent_id, "name": ev.name,
            "parent_id": ev.parent_id, "prompt": ev.prompt[:MAX_SHOWN_OUTPUT]}


def _finished(ev: Any) -> dict[str, Any]:
    return {"type": "agent_done", "agent_id": ev.agent_id, "state": ev.state,
            "steps": ev.steps, "tokens": ev.usage.total_tokens, "error": ev.error}


def _rate_limited(ev: Any) -> dict[str, Any]:
    return {"type": "retry", "agent_id": ev.agent_id, "delay": round(ev.delay, 2),
            "limit": ev.limit}


_CONVERTERS: dict[type, Any] = {
    AssistantDelta: _delta,
    StepBegin: _step,
    ToolCallStarted: _tool_call,
    ToolCallFinished: _tool_result,
    StepEnd: _step_end,
    AgentSpawned: _spawned,
    AgentFinished: _finished,
    RateLimited: _rate_limited,
}
