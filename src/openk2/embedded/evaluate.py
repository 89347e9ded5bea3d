"""Held-out task success of a served model, driven the two ways users drive it.

- client: the official `openai` client sends the task's chat and tool schemas, runs the tool
  calls it gets back against the task's `ToolWorld`, and repeats until a plain answer;
- swarm: openk2's swarm runtime runs the task as an orchestrator over HTTP, its sub-agents
  using the world's tools (exactly what `openk2 swarm --workspace` does).

Answers are graded exactly (`check_answer`). Greedy decoding (temperature 0) by default, so a
figure is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from openk2.agent.llm.openai_compat import OpenAICompatProvider
from openk2.agent.llm.provider import GenerationSettings
from openk2.agent.swarm import BudgetLimits, Swarm, SwarmConfig
from openk2.agent.tools.workspace import world_tools
from openk2.train.synthetic import Task, ToolWorld, check_answer


@dataclass(frozen=True, slots=True)
class Graded:
    """One task's outcome."""

    task_id: str
    family: str
    mode: str
    success: bool
    answer: str | None
    calls: int
    """Model calls the task took (sub-agents included)."""
    error: str | None = None


async def client_task(client: Any, model: str, task: Task, *, temperature: float = 0.0,
                      max_turns: int = 8) -> Graded:
    """Drive one task with an `openai.AsyncOpenAI` client, running its tools locally."""
    world = ToolWorld.from_json(task.world)
    messages: list[dict[str, Any]] = [dict(m) for m in task.prompt]
    for turn in range(1, max_turns + 1):
        resp = await client.chat.completions.create(
            model=model, messages=messages, tools=task.tools, temperature=temperature,
            max_tokens=256)
        msg = resp.choices[0].message
        if not msg.tool_calls:
            answer = msg.content or ""
            return Graded(task.id, task.family, "client", check_answer(task, answer), answer, turn)
        messages.append(msg.model_dump(exclude_none=True))
        for call in msg.tool_calls:
            result = world.call(call.function.name, call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return Graded(task.id, task.family, "client", False, None, max_turns, "turn limit reached")


async def swarm_task(base_url: str, model: str, task: Task, *, temperature: float = 0.0,
                     max_steps: int = 40) -> Graded:
    """Run one task through the swarm runtime against the server."""
    tools = world_tools(ToolWorld.from_json(task.world))
    config = SwarmConfig(limits=BudgetLimits(max_steps=max_steps), agent_max_steps=6,
                         subagent_tools=tuple(tools.names),
                         settings=GenerationSettings(temperature=temperature, max_tokens=256))
    provider = OpenAICompatProvider(base_url, model)
    try:
        outcome = await Swarm(provider, tools=tools, config=config).run(task.prompt[-1]["content"])
    finally:
        await provider.aclose()
    calls = outcome.accounting.total_steps
    ok = outcome.state == "completed" and check_answer(task, outcome.answer)
    return Graded(task.id, task.family, "swarm", ok, outcome.answer, calls, outcome.error)


async def evaluate(base_url: str, model: str, tasks: Sequence[Task], mode: str, *,
                   concurrency: int = 8, temperature: float = 0.0) -> list[Graded]:
    """Grade every task (`mode` 'client' or 'swarm'), `concurrency` tasks at a time."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(task: Task) -> Graded:
        async with gate:
            if mode == "client":
                return await client_task(client, model, task, temperature=temperature)
            return await swarm_task(base_url, model, task, temperature=temperature)

    try:
        return list(await asyncio.gather(*(one(t) for t in tasks)))
    finally:
        await client.close()


def summarize(graded: Sequence[Graded], seconds: float) -> dict[str, Any]:
    """Success per mode and family, plus totals."""
    out: dict[str, Any] = {"tasks": len(graded), "seconds": round(seconds, 1)}
    groups: dict[str, list[bool]] = {}
    for g in graded:
        groups.setdefault(g.mode, []).append(g.success)
        groups.setdefault(f"{g.mode}/{g.family}", []).append(g.success)
    out["success"] = {k: round(sum(v) / len(v), 4) for k, v in sorted(groups.items())}
    out["all"] = round(sum(g.success for g in graded) / max(1, len(graded)), 4)
    return out


def write_report(path: Any, graded: Sequence[Graded], summary: dict[str, Any]) -> None:
    """Every graded task plus the summary, as JSON."""
    payload = {"summary": summary, "tasks": [asdict(g) for g in graded]}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def timed(coro: Any) -> tuple[Any, float]:
    """Run a coroutine to completion; (result, seconds)."""
    start = time.perf_counter()
    result = asyncio.run(coro)
    return result, time.perf_counter() - start
