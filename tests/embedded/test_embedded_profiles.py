"""The training chats render to exactly the prompts the runtime later sends the server.

The real swarm runs each held-out task with a scripted provider that replays the task's own
chat; every request it makes goes through the server's request model and template, and must
equal the training chat rendered up to that assistant turn.
"""

from __future__ import annotations

import json
from typing import Any

from openk2.agent.llm.message import ToolCall
from openk2.agent.llm.scripted import ChatCall, Reply, ScriptedProvider
from openk2.agent.swarm import Swarm, SwarmConfig
from openk2.agent.tools.workspace import world_tools
from openk2.embedded.corpus import client_tasks, swarm_tasks
from openk2.serve.chat_plan import message_dicts
from openk2.serve.protocol import ChatCompletionRequest
from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.chat import encode_chat
from openk2.train.synthetic import Task, ToolWorld


def _server_prompt(call: ChatCall) -> list[int]:
    """What `openk2 serve` renders for this call (thinking on, the server default)."""
    body = {"model": "m", "messages": [m.to_openai() for m in call.messages],
            "tools": [t.to_openai() for t in call.tools] or None}
    req = ChatCompletionRequest.model_validate(body)
    messages = message_dicts(req)
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []]
    return encode_chat(default_tokenizer(), messages, tools or None)


def _training_prompt(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
    return encode_chat(default_tokenizer(), messages, tools)


def _reply(message: dict[str, Any]) -> Reply:
    calls = [ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
             for c in message.get("tool_calls") or []]
    return Reply(text=message.get("content") or "", tool_calls=calls)


class _Replayer:
    """Answers each call with the next assistant turn of the matching scripted chat and checks
    that the rendered request equals the training chat's prefix."""

    def __init__(self, task: Task) -> None:
        self.chats = {c["messages"][1]["content"]: c for c in task.subchats}
        self.chats[task.messages[1]["content"]] = {"messages": task.messages, "tools": task.tools}
        self.mismatches: list[str] = []
        self.checked = 0

    def __call__(self, call: ChatCall) -> Reply:
        first_user = next(m.content for m in call.messages if m.role == "user")
        chat = self.chats[first_user]
        n = len(call.messages)
        self.checked += 1
        if _server_prompt(call) != _training_prompt(chat["messages"][:n], chat["tools"]):
            self.mismatches.append(f"request {call.index} ({first_user!r}, {n} messages)")
        return _reply(chat["messages"][n])


async def test_swarm_requests_render_like_the_training_chats() -> None:
    for task in swarm_tasks(6, seed=3, split="heldout"):
        replayer = _Replayer(task)
        world = ToolWorld.from_json(task.world)
        tools = world_tools(world)
        swarm = Swarm(ScriptedProvider(replayer), tools=tools,
                      config=SwarmConfig(subagent_tools=tuple(tools.names)))
        swarm_out = await swarm.run(task.prompt[-1]["content"])
        assert replayer.mismatches == []
        # orchestrator: create, assign, answer; each worker: call a tool, answer
        assert replayer.checked == 3 + 2 * len(task.subchats)
        assert swarm_out.answer == task.expected


def test_client_chats_declare_the_runtime_tool_schemas() -> None:
    specs = [s.to_openai() for s in world_tools(ToolWorld()).specs()]
    for task in client_tasks(5, seed=1, split="heldout"):
        assert json.dumps(task.tools) == json.dumps(specs)
