"""Run bench tasks through the same session path as `openk2 code -p`, then grade each one.

Each run gets a fresh copy of the task's repo and its own session store, so runs never see one
another's edits or history; a run that crashes is still graded (its edits may be complete) and
its error is kept in the result, and one task's failure never stops the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openk2.agent.llm.provider import ChatProvider
from openk2.code.bench.grade import edited_tests, grade, hash_tests
from openk2.code.bench.tasks import BenchTask
from openk2.code.build import Safety, open_session
from openk2.code.compaction import TokenCount, approx_tokens
from openk2.code.config import CodeSettings
from openk2.code.safety import build_safety
from openk2.code.sessions import SessionStore
from openk2.code.workspace import Workspace

ProviderFactory = Callable[[BenchTask], ChatProvider]
"""A provider for one run (the oracle's depends on the task; an HTTP one does not)."""
SafetyFactory = Callable[[CodeSettings, Workspace], Safety]


def guarded(*, sandbox: bool = True) -> SafetyFactory:
    """The CLI's safety for each run: the real guard in the run's mode, shell commands and the
    grader in the sandbox. This interpreter (which has pytest) is readable there, because the
    graders run `{python}`; no snapshots and no user work to protect, since the workspace is
    a throwaway copy."""
    python_dirs = [Path(sys.prefix), Path(sys.base_prefix)]

    def make(settings: CodeSettings, ws: Workspace) -> Safety:
        return build_safety(settings, ws, sandbox=sandbox, snapshots=False, readable=python_dirs,
                            throwaway=True)

    return make


@dataclass(slots=True)
class TaskResult:
    """One run of one task: the agent's summary and the grader's verdict."""

    task: str
    repeat: int
    outcome: str
    """passed, failed or skipped (a required executable is missing)."""
    steps: int = 0
    tool_calls: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    tests_edited: list[str] = field(default_factory=list)
    run_status: str = ""
    error: str | None = None
    grade_output: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def run_task(task: BenchTask, repeat: int, settings: CodeSettings,
                   make_provider: ProviderFactory, make_safety: SafetyFactory,
                   count: TokenCount = approx_tokens) -> TaskResult:
    """Copy the repo, run the agent on the prompt, hash tests around it, grade."""
    if missing := task.missing_tools():
        return TaskResult(task.name, repeat, "skipped", error=f"not on PATH: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix=f"openk2-bench-{task.name}-") as tmp:
        ws_dir = Path(tmp) / "ws"
        shutil.copytree(task.repo, ws_dir)
        ws = Workspace.open(ws_dir)
        before = hash_tests(ws_dir)
        provider, safety = make_provider(task), make_safety(settings, ws)
        try:
            result = await _agent(task, repeat, settings, ws, Path(tmp), provider, safety, count)
            result.tests_edited = edited_tests(before, hash_tests(ws_dir))
            verdict = await grade(task, ws_dir, safety.launcher)
        finally:
            await _close(provider, safety)
    result.outcome = "passed" if verdict.passed else "failed"
    result.grade_output = verdict.output
    return result


async def _agent(task: BenchTask, repeat: int, settings: CodeSettings, ws: Workspace,
                 tmp: Path, provider: ChatProvider, safety: Safety,
                 count: TokenCount) -> TaskResult:
    result = TaskResult(task.name, repeat, "failed")
    start = time.monotonic()
    try:
        session = open_session(settings, ws, provider=provider, safety=safety,
                               store=SessionStore(tmp / "state"), count=count)
        try:
            session.add_user(task.prompt)
            summary = await session.run()
        finally:
            session.log.close()
        result.steps, result.tool_calls = summary.steps, summary.tool_calls
        result.usage, result.run_status = summary.usage.to_dict(), summary.status
        result.error = summary.error
    except Exception as exc:  # noqa: BLE001 - one run's crash is its result, not the bench's
        result.run_status, result.error = "crashed", f"{type(exc).__name__}: {exc}"
    finally:
        result.wall_s = round(time.monotonic() - start, 3)
    return result


async def _close(provider: ChatProvider, safety: Safety) -> None:
    aclose: Callable[[], Awaitable[None]] | None = getattr(provider, "aclose", None)
    if aclose is not None:
        await aclose()
    close = getattr(safety.launcher, "close", None)
    if close is not None:
        close()


async def run_bench(tasks: Sequence[BenchTask], settings: CodeSettings, *,
                    make_provider: ProviderFactory, make_safety: SafetyFactory,
                    repeats: int = 1, jobs: int = 4,
                    count: TokenCount = approx_tokens) -> list[TaskResult]:
    """Every task `repeats` times, at most `jobs` at once; results in task order."""
    gate = asyncio.Semaphore(max(1, jobs))

    async def one(task: BenchTask, k: int) -> TaskResult:
        async with gate:
            return await run_task(task, k, settings, make_provider, make_safety, count)

    runs = [one(t, k) for t in tasks for k in range(repeats)]
    return list(await asyncio.gather(*runs))
