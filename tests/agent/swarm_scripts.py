"""Scripts for swarm tests: route calls by role, fake orchestrators and workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from openk2.agent.llm import Message
from openk2.agent.llm.scripted import ChatCall, Reply, Step, call
from openk2.agent.swarm import ORCHESTRATOR_PROMPT, AgentSpec
from openk2.agent.swarm.spec import DEFAULT_WORKER_PROMPT
from openk2.agent.tools import tool

ScriptFn = Callable[[ChatCall], Any]


class NoteParams(BaseModel):
    text: str


@tool()
async def note(p: NoteParams) -> str:
    """Write a note."""
    return f"noted: {p.text}"


WORKER = AgentSpec(name="worker", system_prompt=DEFAULT_WORKER_PROMPT, tools=("note",))

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


class TokenBucketLimit:
    """A provider-side RPM-style limit: `rate` calls per second, bursts of `burst`.

    `admit()` is None for an admitted call, else the Retry-After (the wait for the next
    token) that the server would send with its 429; `admitted`/`refused` count calls.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.admitted = 0
        self.refused = 0

    def admit(self) -> float | None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.admitted += 1
            return None
        self.refused += 1
        return (1.0 - self.tokens) / self.rate

    def headers(self) -> dict[str, str]:
        """OpenAI-style `x-ratelimit-*` for the current state (the reset is the time until
        the bucket is full again)."""
        full_in = (self.burst - self.tokens) / self.rate
        return {"x-ratelimit-limit-requests": str(self.burst),
                "x-ratelimit-remaining-requests": str(int(self.tokens)),
                "x-ratelimit-reset-requests": f"{full_in * 1000:.0f}ms"}
