"""A terminal chat with tools: the client-driven path, on any OpenAI-compatible server.

Each user turn runs the agent loop: the model may call the workspace tools (calculator,
read_file, kv_get, kv_set), which run here and are shown as they happen; its answer streams
to the terminal. The conversation is kept across turns (`reset` clears it).
"""

from __future__ import annotations

import sys
from typing import TextIO

from openk2.agent.llm.message import Message, system, user
from openk2.agent.llm.provider import ChatProvider, GenerationSettings
from openk2.agent.loop.events import AssistantDelta, Event, ToolCallFinished, ToolCallStarted, Wire
from openk2.agent.loop.runner import AgentRunner, MaxStepsReachedError
from openk2.agent.tools.base import Toolset


class TerminalChat:
    """One conversation: history, tools, and an event printer."""

    def __init__(self, provider: ChatProvider, tools: Toolset, system_prompt: str, *,
                 settings: GenerationSettings | None = None, out: TextIO = sys.stdout,
                 max_steps: int = 8) -> None:
        self.provider = provider
        self.tools = tools
        self.system_prompt = system_prompt
        self.settings = settings
        self.out = out
        self.max_steps = max_steps
        self.history: list[Message] = [system(system_prompt)]

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.history = [system(self.system_prompt)]

    async def ask(self, text: str) -> str:
        """Run one user turn to the model's answer; tool calls are printed as they run."""
        wire = Wire()
        wire.subscribe(self._show)
        runner = AgentRunner(self.provider, self.tools, [*self.history, user(text)], wire=wire,
                             max_steps=self.max_steps, settings=self.settings)
        try:
            outcome = await runner.run()
            answer = outcome.message.content
        except MaxStepsReachedError as exc:
            answer = f"(stopped: {exc})"
        self.history = runner.history
        self.out.write("\n")
        self.out.flush()
        return answer

    def _show(self, event: Event) -> None:
        if isinstance(event, AssistantDelta) and event.kind == "text":
            self.out.write(event.text)
        elif isinstance(event, ToolCallStarted):
            self.out.write(f"  -> {event.call.name} {event.call.arguments}\n")
        elif isinstance(event, ToolCallFinished):
            self.out.write(f"  <- {event.result.output}\n")
        self.out.flush()
