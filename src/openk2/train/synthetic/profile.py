"""The surface the synthetic chats share with the runtime that will serve the trained model.

A model trained on these chats only sees what they contain: the system prompt, the declared tool
schemas, and the exact text of each tool result. To score well through a particular runtime
(e.g. openk2's swarm, which declares more tools and wraps sub-agent answers in `<subagent>`
elements), generate the training chats with a `ChatProfile` holding that runtime's strings. This
module cannot import the runtime (train never imports agent); the integration layer builds the
matching profile and passes it to `generate_tasks` and `evaluate.run_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openk2.train.synthetic.world import SWARM_TOOL_NAMES, WORKER_TOOL_NAMES, tool_schemas


@dataclass(kw_only=True, slots=True)
class ChatProfile:
    """Prompts, tool declarations and swarm result formats of the synthetic chats."""

    system_prompt: str = "You are openk2. Use the tools, then reply with only the answer."
    """System prompt of every top-level chat."""
    worker_prompt: str = "You are a worker. Use your tools, then reply with only the result."
    """The system_prompt the orchestrator passes to `create_subagent`."""
    worker_system: str = "{worker_prompt}"
    """The system prompt a sub-agent actually runs with; `{worker_prompt}` is substituted."""
    orchestrator_tools: list[dict[str, Any]] = field(
        default_factory=lambda: tool_schemas((*WORKER_TOOL_NAMES, *SWARM_TOOL_NAMES))
    )
    """Tool schemas declared in top-level chats (must include the four direct tools and
    create_subagent/assign_task; extra runtime tools may be listed too)."""
    worker_tools: list[dict[str, Any]] = field(
        default_factory=lambda: tool_schemas(WORKER_TOOL_NAMES)
    )
    """Tool schemas declared to sub-agents."""
    created: str = "Created sub-agent {name}."
    """Result text of `create_subagent`; fields: {name}."""
    subagent_result: str = "{answer}"
    """Result text of `assign_task`; fields: {answer}, {name}, {n} (1-based run number of this
    agent name within the chat), {steps} (model calls the sub-agent made)."""

    def worker_system_prompt(self) -> str:
        return self.worker_system.format(worker_prompt=self.worker_prompt)

    def assign_result(self, *, answer: str, name: str, n: int, steps: int) -> str:
        return self.subagent_result.format(answer=answer, name=name, n=n, steps=steps)


DEFAULT_PROFILE = ChatProfile()
"""The minimal profile: short prompts, six tools, bare sub-agent answers."""
