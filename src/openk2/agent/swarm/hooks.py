"""The swarm's hooks into each agent loop: budgets before a step, the durable log after it,
and the stall watchdog."""

from __future__ import annotations

import asyncio
import dataclasses

from openk2.agent.llm.message import Completion, ToolCall
from openk2.agent.llm.provider import GenerationSettings
from openk2.agent.loop.runner import AgentRunner, RunHooks
from openk2.agent.loop.step import StepResult
from openk2.agent.swarm.host import SwarmHost
from openk2.agent.swarm.state import MAIN, AgentRecord
from openk2.agent.tools.base import ToolResult


class StalledError(Exception):
    """The watchdog saw no completed step for `stall_timeout_s`."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__(f"no progress for {seconds} s; stopped by the watchdog")


class SwarmHooks(RunHooks):
    """Budgets before each step, durable logging after it, watchdog reset."""

    def __init__(self, swarm: SwarmHost, rec: AgentRecord) -> None:
        self.swarm = swarm
        self.rec = rec
        self.watchdog: asyncio.Timeout | None = None

    async def before_step(self, runner: AgentRunner) -> None:
        budget = self.swarm.budget
        budget.reserve_steps(1, orchestrator=self.rec.agent_id == MAIN)
        left = budget.tokens_left()
        if left is not None:
            settings = runner.settings or GenerationSettings()
            cap = left if settings.max_tokens is None else min(settings.max_tokens, left)
            runner.settings = dataclasses.replace(settings, max_tokens=max(cap, 1))

    async def after_llm(self, runner: AgentRunner, completion: Completion) -> None:
        self.swarm.budget.add_usage(completion.usage)
        self.rec.steps = runner.steps
        self.rec.usage = runner.usage
        self.swarm.log(self.rec.agent_id, "llm", runner.steps, {
            "message": completion.message.to_openai(), "usage": completion.usage.to_dict()})
        # No wait here: the group commit runs on the next loop iteration, and tools that
        # start long work (the swarm tools) sync before they begin.

    async def after_tool(self, runner: AgentRunner, call: ToolCall, result: ToolResult) -> None:
        self.swarm.log(self.rec.agent_id, "tool", runner.steps,
                       {"call_id": call.id, "output": result.output})

    async def after_step(self, runner: AgentRunner, result: StepResult) -> None:
        await self.swarm.store.sync()
        if self.watchdog is not None and self.swarm.config.stall_timeout_s is not None:
            loop = asyncio.get_running_loop()
            self.watchdog.reschedule(loop.time() + self.swarm.config.stall_timeout_s)
