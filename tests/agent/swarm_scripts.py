"""Scripts for swarm tests: route calls by role, fake orchestrators and workers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from openk2.agent.llm import Message
from openk2.agent.llm.scripted import ChatCall, Reply, Step, call
from openk2.agent.swarm import ORCHESTRATOR_PROMPT

ScriptFn = Callable[[ChatCall], Any]


def is_orchestrator(c: ChatCall) -> bool:
    return c.messages[0].content == ORCHESTRATOR_PROMPT


def task_of(c: ChatCall) -> str:
    """The sub-agent's task (its first user message)."""
    return next(m.content for m in c.messages if m.role == "user")


def steps_done(c: ChatCall) -> int:
    """Assistant messages already in the history (0 on the first call)."""
    return sum(m.role == "assistant" for m in c.messages)


def last_tool_output(c: ChatCall) -> str:
    tools = [m for m in c.messages if m.role == "tool"]
    return tools[-1].content if tools else ""


def route(orchestrator: ScriptFn, worker: ScriptFn) -> ScriptFn:
    return lambda c: orchestrator(c) if is_orchestrator(c) else worker(c)


def fan_out(items: list[str], template: str = "Research {{item}}.", agent: str = "worker",
            final: str = "FINAL") -> ScriptFn:
    """Orchestrator: one `swarm` call, then answer with `final` + the tool output."""

    def orchestrate(c: ChatCall) -> Step:
        if steps_done(c) == 0:
            return Reply(tool_calls=[call("swarm", 0, prompt_template=template, items=items,
                                          agent=agent)])
        return Reply(text=f"{final}\n{last_tool_output(c)}")

    return orchestrate


def assign_many(tasks: list[tuple[str, str]], final: str = "FINAL") -> ScriptFn:
    """Orchestrator: several assign_task calls in one turn, then answer."""

    def orchestrate(c: ChatCall) -> Step:
        if steps_done(c) == 0:
            return Reply(tool_calls=[call("assign_task", i, agent=a, prompt=p)
                                     for i, (a, p) in enumerate(tasks)])
        return Reply(text=f"{final}\n{last_tool_output(c)}")

    return orchestrate


def echo_worker(delay: float = 0.0, steps: int = 1) -> ScriptFn:
    """Worker: calls the `note` tool `steps - 1` times, then answers in a <result> block."""

    def work(c: ChatCall) -> Step:
        done = steps_done(c)
        if done + 1 < steps:
            return Reply(tool_calls=[call("note", 0, text=f"{task_of(c)} step {done}")],
                         delay=delay)
        return Reply(text=f"<result>done: {task_of(c)}</result>", delay=delay)

    return work


def tool_messages(c: ChatCall) -> list[Message]:
    return [m for m in c.messages if m.role == "tool"]


def args(c: ChatCall) -> dict[str, Any]:
    last = [m for m in c.messages if m.role == "assistant"][-1]
    return json.loads(last.tool_calls[0].arguments)
