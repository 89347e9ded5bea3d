"""One chat turn with server-side tools: the agent loop of `openk2 chat`, run by the server.

The page sends the conversation (OpenAI message dicts, as the server returned them); the
server runs the model against its own `/v1` with the workspace tools and streams every delta,
tool call and tool result. The final event carries the turn's new messages (assistant tool
calls, tool results, the answer), which the page keeps and sends back with the next turn.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from openk2.agent.llm.message import Message, system
from openk2.agent.llm.openai_compat import OpenAICompatProvider
from openk2.agent.llm.provider import GenerationSettings
from openk2.agent.loop.events import Wire
from openk2.agent.loop.runner import AgentRunner, MaxStepsReachedError
from openk2.agent.tools.base import Toolset

PAGE_ROLES = ("user", "assistant", "tool")


class ToolChatRequest(BaseModel):
    """Body of `POST /app/chat`."""

    messages: list[dict[str, Any]] = Field(min_length=1, description="The conversation so far, "
                                           "ending with the new user message; no system message.")
    thinking: bool = True
    max_tokens: int | None = Field(default=512, ge=1)
    temperature: float | None = Field(default=0.0, ge=0, le=2)


def chat_history(req: ToolChatRequest, system_prompt: str) -> list[Message]:
    """The model's context: our system prompt, then the page's messages (a page cannot
    replace the system prompt, which names the tools the server runs)."""
    kept = [m for m in req.messages if m.get("role") != "system"]
    for i, m in enumerate(kept):
        if m.get("role") not in PAGE_ROLES:
            raise ValueError(f"messages[{i}].role must be one of {', '.join(PAGE_ROLES)}")
    last = kept[-1] if kept else {}
    if last.get("role") != "user" or not str(last.get("content") or "").strip():
        raise ValueError("the conversation must end with a non-empty user message")
    return [system(system_prompt), *(Message.from_openai(m) for m in kept)]


async def run_turn(provider: OpenAICompatProvider, tools: Toolset, history: list[Message],
                   req: ToolChatRequest, wire: Wire, max_steps: int) -> dict[str, Any]:
    """Run the turn to its answer; the final event lists the messages it added."""
    thinking = {"type": "enabled" if req.thinking else "disabled"}
    settings = GenerationSettings(temperature=req.temperature, max_tokens=req.max_tokens,
                                  extra_body={"thinking": thinking})
    runner = AgentRunner(provider, tools, history, wire=wire, max_steps=max_steps,
                         settings=settings)
    stopped = None
    try:
        outcome = await runner.run()
        usage = outcome.usage
    except MaxStepsReachedError as exc:
        stopped, usage = str(exc), runner.usage
    finally:
        await provider.aclose()
    added = [m.to_openai() for m in runner.history[len(history):]]
    return {"type": "done", "messages": added, "stopped": stopped, "usage": usage.to_dict()}
