"""The two ways the embedded model is driven, as synthetic-chat profiles matching the runtime.

- `client_profile`: an OpenAI client declares the four direct tools and runs them itself (the
  official-API path: `openk2 serve` + the `openai` package, the web page, `openk2 chat`).
- `swarm_profile`: `openk2 swarm` drives the model as an orchestrator with the runtime's own
  system prompt and swarm tools; sub-agents it creates get the direct tools.

Every string here is the runtime's (prompts, tool schemas, result texts), so a training chat
renders to exactly the tokens the served model later receives; `tests/embedded` checks that by
running the real swarm and comparing the rendered prompts.
"""

from __future__ import annotations

from openk2.agent.swarm.prompts import ORCHESTRATOR_PROMPT
from openk2.agent.swarm.tools import swarm_tool_specs
from openk2.agent.tools.workspace import world_tool_specs
from openk2.train.synthetic import ChatProfile

CLIENT_SYSTEM_PROMPT = (
    "You are openk2, a small assistant. Use the tools, then reply with only the answer."
)
"""System prompt of the client-driven chats (and the default of `openk2 chat`)."""

WORKER_PROMPT = "You are a worker. Use your tools, then reply with only the result."
"""The system prompt the trained orchestrator gives the sub-agents it creates."""

SUBAGENT_RESULT = (
    '<subagent agent_id="{name}-{n}" name="{name}" state="completed" steps="{steps}">\n'
    "{answer}\n</subagent>"
)
"""`SubagentResult.render` of a completed sub-agent (agent ids count from 1 within a run)."""

CREATED = "created agent '{name}'; give it work with assign_task or swarm."
"""What `Swarm.register_spec` answers to a new `create_subagent`."""


def client_profile() -> ChatProfile:
    """Chats where the client declares and runs the four direct tools."""
    direct = [s.to_openai() for s in world_tool_specs()]
    return ChatProfile(system_prompt=CLIENT_SYSTEM_PROMPT, worker_prompt=WORKER_PROMPT,
                       orchestrator_tools=direct, worker_tools=direct)


def swarm_profile() -> ChatProfile:
    """Orchestrator chats as `openk2 swarm --workspace` runs them."""
    return ChatProfile(
        system_prompt=ORCHESTRATOR_PROMPT,
        worker_prompt=WORKER_PROMPT,
        orchestrator_tools=[s.to_openai() for s in swarm_tool_specs()],
        worker_tools=[s.to_openai() for s in world_tool_specs()],
        created=CREATED,
        subagent_result=SUBAGENT_RESULT,
    )
