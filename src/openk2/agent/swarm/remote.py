"""Remote execution of sub-agents: the job/report contract and an in-process backend.

A remote backend receives a picklable `RemoteJob` (provider, tools, context, step allowance),
runs the sub-agent's whole loop where it likes, and returns a `RemoteReport` with every step it
took; the driver then logs those steps in order. Differences from the local path, by design:
steps are reserved from the budget in bulk before the job starts (unused ones are given back),
the driver's AIMD scheduler does not see the job's calls (give remote providers their own
retries), a crash of the driver re-runs the jobs that were still out, and remote sub-agents do
not nest. `InlineBackend` runs jobs in the driver's own loop (tests, debugging);
`ray_backend.RayBackend` runs them as Ray tasks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from openk2.agent.llm.message import Completion, Message, ToolCall, Usage
from openk2.agent.llm.provider import ChatProvider, GenerationSettings
from openk2.agent.loop.runner import AgentRunner, MaxStepsReachedError, RunHooks
from openk2.agent.tools.base import Tool, ToolResult, Toolset


@dataclass(frozen=True, slots=True)
class RemoteJob:
    """One sub-agent invocation, picklable."""

    agent_id: str
    provider: ChatProvider
    tools: list[Tool[Any]]
    history: list[Message]
    steps_done: int
    max_steps: int
    repeat_limit: int
    settings: GenerationSettings | None
    timeout_s: float | None


@dataclass(frozen=True, slots=True)
class RemoteStep:
    """One step taken remotely: the assistant message, its usage, the tool outputs it ran."""

    step: int
    message: dict[str, Any] | None
    """None for a step the job's history already held (cut by a crash mid-step): only its
    missing tool calls ran, so only their outputs are new."""
    usage: Usage
    outputs: list[tuple[str, str]]


@dataclass(slots=True)
class RemoteReport:
    """What a worker sends back."""

    steps: list[RemoteStep] = field(default_factory=list)
    text: str = ""
    stop_reason: str | None = None
    error_kind: str | None = None
    error: str | None = None


class _Recorder(RunHooks):
    def __init__(self, report: RemoteReport) -> None:
        self.report = report

    async def after_llm(self, runner: AgentRunner, completion: Completion) -> None:
        self.report.steps.append(RemoteStep(runner.steps, completion.message.to_openai(),
                                            completion.usage, []))

    async def after_tool(self, runner: AgentRunner, call: ToolCall, result: ToolResult) -> None:
        steps = self.report.steps
        if not steps or steps[-1].step != runner.steps:  # finishing a restored step
            steps.append(RemoteStep(runner.steps, None, Usage(), []))
        steps[-1].outputs.append((call.id, result.output))


async def run_job(job: RemoteJob) -> RemoteReport:
    """Run one invocation to its end (the body of the Ray task; also callable locally)."""
    report = RemoteReport()
    runner = AgentRunner(job.provider, Toolset(job.tools), job.history, agent_id=job.agent_id,
                         max_steps=job.max_steps, settings=job.settings,
                         hooks=_Recorder(report), repeat_limit=job.repeat_limit,
                         steps_done=job.steps_done)
    try:
        async with asyncio.timeout(job.timeout_s):
            outcome = await runner.run()
        report.text, report.stop_reason = outcome.text, outcome.stop_reason
    except MaxStepsReachedError as exc:
        report.error_kind, report.error = "aborted", str(exc)
    except TimeoutError:
        report.error_kind, report.error = "aborted", f"timed out after {job.timeout_s} s"
    except Exception as exc:  # the worker is a supervisor boundary too
        report.error_kind, report.error = "failed", f"{type(exc).__name__}: {exc}"
    last = runner.last_assistant()
    report.text = report.text or (last.content if last is not None else "")
    return report


class RemoteBackend(Protocol):
    """Anything that can run a `RemoteJob` to its end."""

    async def run(self, job: RemoteJob) -> RemoteReport:
        """Run the job; never raises for failures inside the sub-agent."""
        ...


class InlineBackend:
    """Runs jobs in the current event loop (exercises the remote contract without a cluster)."""

    async def run(self, job: RemoteJob) -> RemoteReport:
        """Run the job here."""
        return await run_job(job)
