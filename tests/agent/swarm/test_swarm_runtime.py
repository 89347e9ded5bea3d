"""The swarm runtime with the scripted provider: fan-out, isolation, budgets, 429s, results."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
from swarm_scripts import (
    WORKER,
    NoteParams,
    assign_many,
    echo_worker,
    fan_out,
    is_orchestrator,
    last_tool_output,
    note,
    route,
    steps_done,
    task_of,
)

from openk2.agent.llm import ProviderStatusError, RateLimitError
from openk2.agent.llm.scripted import HANG, Reply, ScriptedProvider, call
from openk2.agent.swarm import (
    TRUNCATION_MARKER,
    AgentSpec,
    BackoffPolicy,
    BudgetLimits,
    Swarm,
    SwarmConfig,
)
from openk2.agent.tools import Toolset, tool


def _swarm(script, **config) -> tuple[Swarm, ScriptedProvider]:
    provider = ScriptedProvider(script)
    cfg = SwarmConfig(backoff=BackoffPolicy(base_s=0.01, max_s=0.05), **config)
    return Swarm(provider, config=cfg, tools=Toolset([note]), specs=[WORKER]), provider


async def test_fan_out_and_gather_with_critical_steps() -> None:
    items = [f"city{i}" for i in range(20)]
    swarm, provider = _swarm(route(fan_out(items), echo_worker(delay=0.1, steps=3)))
    start = time.monotonic()
    out = await swarm.run("Tabulate 20 cities.")
    elapsed = time.monotonic() - start
    assert out.state == "completed" and out.answer.startswith("FINAL")
    assert "completed: 20, failed: 0, aborted: 0" in out.answer
    assert all(f"done: Research {i}." in out.answer for i in items)
    assert len(out.agents) == 20 and {a.state for a in out.agents} == {"completed"}
    acc = out.accounting
    assert acc.total_steps == 2 + 20 * 3
    assert acc.critical_steps == (1 + 3) + 1  # Kimi: sum over main steps of 1 + max child
    assert acc.rolled_usage["main"] == acc.usage
    assert elapsed < 3 * 0.1 * 4  # parallel: ~3 sequential child calls, not 60
    assert len(provider.calls) == 62


async def test_parallel_assign_task_and_create_subagent() -> None:
    def orchestrate(c):
        if steps_done(c) == 0:
            return Reply(tool_calls=[call("create_subagent", 0, name="critic",
                                          system_prompt="You criticise.")])
        return assign_many([("critic", "review A"), ("critic", "review B"),
                            ("nobody", "x")])(type(c)(c.index, c.messages[:2], c.tools, None)) \
            if steps_done(c) == 1 else Reply(text="FINAL " + " | ".join(
                m.content for m in c.messages if m.role == "tool"))

    def work(c):
        assert c.messages[0].content == "You criticise."
        return Reply(text=f"critique of {task_of(c)[-1]}", delay=0.05)

    swarm, _ = _swarm(route(orchestrate, work))
    out = await swarm.run("Review two drafts.")
    assert "created agent 'critic'" in out.answer
    assert "critique of A" in out.answer and "critique of B" in out.answer
    assert "no agent named 'nobody'; create it with create_subagent first" in out.answer
    assert sorted(a.state for a in out.agents) == ["completed", "completed"]


@tool()
async def explode(p: NoteParams) -> str:
    """Breaks."""
    raise ValueError("disk on fire")


async def test_child_that_raises_or_hangs_does_not_stop_siblings() -> None:
    def work(c):
        task = task_of(c)
        if "bad" in task and steps_done(c) == 0:
            return Reply(tool_calls=[call("explode", 0, text="x")])
        if "hang" in task:
            return HANG
        if "http" in task:
            return ProviderStatusError(500, "upstream broke")
        return Reply(text=f"ok {task}", delay=0.05)

    provider = ScriptedProvider(route(fan_out(["good1", "bad", "hang", "http", "good2"]), work))
    worker = AgentSpec(name="worker", system_prompt="w", tools=("explode",))
    cfg = SwarmConfig(stall_timeout_s=0.3)
    swarm = Swarm(provider, config=cfg, tools=Toolset([explode]), specs=[worker])
    out = await swarm.run("Do five things.")
    states = {a.agent_id: (a.state, a.error) for a in out.agents}
    assert states["worker-1"][0] == "completed" and states["worker-5"][0] == "completed"
    assert states["worker-2"] == ("failed", "ValueError: disk on fire")
    assert states["worker-3"][0] == "aborted" and "watchdog" in (states["worker-3"][1] or "")
    assert states["worker-4"][0] == "failed" and "HTTP 500" in (states["worker-4"][1] or "")
    assert "completed: 2, failed: 2, aborted: 1" in out.answer
    assert "<resume_hint>" in out.answer and out.state == "completed"


async def test_step_and_agent_budgets_are_never_exceeded() -> None:
    items = [f"i{i}" for i in range(30)]
    swarm, provider = _swarm(route(fan_out(items), echo_worker(steps=5)),
                             limits=BudgetLimits(max_steps=40, max_agents=30))
    out = await swarm.run("Too much work.")
    assert out.accounting.total_steps <= 40 and swarm.budget.steps <= 40
    assert len(provider.calls) <= 40
    assert out.state == "completed"  # one step was held back for the orchestrator
    aborted = [a for a in out.agents if a.state == "aborted"]
    assert aborted and all("step budget" in (a.error or "") for a in aborted)

    swarm, provider = _swarm(route(fan_out(items[:6]), echo_worker()),
                             limits=BudgetLimits(max_agents=5))
    out = await swarm.run("Six agents, five allowed.")
    assert out.agents == [] and "may spawn 5 more sub-agents but 6 were requested" in out.answer


async def test_token_budget_stops_new_calls_and_caps_max_tokens() -> None:
    swarm, provider = _swarm(route(fan_out(["a", "b", "c"]), echo_worker(steps=50)),
                             limits=BudgetLimits(max_tokens=2000), repeat_limit=0)
    out = await swarm.run("x" * 400)
    assert all(a.state == "aborted" and "token budget" in (a.error or "") for a in out.agents)
    caps = [c.settings.max_tokens for c in provider.calls if c.settings is not None]
    assert caps and all(0 < cap <= 2000 for cap in caps)


async def test_rate_limit_storm_is_survived_with_aimd() -> None:
    rng = random.Random(7)
    ok = route(fan_out([f"t{i}" for i in range(40)]), echo_worker(delay=0.01, steps=2))

    def stormy(c):
        if not is_orchestrator(c) and rng.random() < 0.5:
            return RateLimitError("slow down", retry_after=0.01 if rng.random() < 0.5 else None)
        return ok(c)

    swarm, _ = _swarm(stormy, provider_concurrency=16)
    out = await swarm.run("Forty tasks under a 429 storm.")
    assert out.state == "completed" and {a.state for a in out.agents} == {"completed"}
    assert swarm.rate_limited > 20
    limiter = swarm._providers["default"].limiter
    assert limiter.limit < 16 and limiter.in_flight == 0


async def test_oversized_result_is_truncated_with_marker_and_kept_as_artifact() -> None:
    big = "".join(f"line {i:06d}\n" for i in range(6000))  # 72,000 characters

    def orchestrate(c):
        n = steps_done(c)
        if n == 0:
            return Reply(tool_calls=[call("assign_task", 0, agent="worker", prompt="dump")])
        if n == 1:
            ref = last_tool_output(c).split("artifact ")[1].split(",")[0]
            return Reply(tool_calls=[call("read_artifact", 0, ref=ref, offset=12, limit=12)])
        return Reply(text="FINAL " + last_tool_output(c))

    swarm, _ = _swarm(route(orchestrate, lambda c: Reply(text=big)), max_return_chars=3000)
    out = await swarm.run("Dump a lot.")
    seen = swarm.state.agents["main"].history[3].content
    assert TRUNCATION_MARKER in seen and "of 72000 characters omitted" in seen
    assert len(seen) < 3000 + 600
    assert "line 000000" in seen and "line 005999" in seen  # head and tail survive
    assert out.answer.startswith("FINAL line 000001\n")
    assert "more characters; next offset 24" in out.answer


async def test_loop_guard_and_resume_tool() -> None:
    failed_once: set[str] = set()

    def work(c):
        task = task_of(c)
        if task == "loop":
            return Reply(tool_calls=[call("note", 0, text="same")])
        if task == "flaky" and task not in failed_once:
            failed_once.add(task)
            return ProviderStatusError(503, "try later")
        return Reply(text=f"done {task}" + (" after resume" if steps_done(c) else ""))

    def orchestrate(c):
        n = steps_done(c)
        if n == 0:
            return assign_many([("worker", "loop"), ("worker", "flaky")])(c)
        if n == 1:
            return Reply(tool_calls=[call("resume", 0, agent_ids={"worker-2": "again"})])
        return Reply(text="FINAL " + last_tool_output(c))

    from openk2.agent.llm.openai_compat import RetryPolicy  # noqa: F401 - documents intent

    swarm, _ = _swarm(route(orchestrate, work), repeat_limit=3)
    out = await swarm.run("Loop and flake.")
    loop, flaky = out.agents
    assert loop.state == "aborted" and "loop guard" in (loop.error or "") and loop.steps == 3
    assert flaky.state == "completed" and "completed: 1, failed: 0" in out.answer
    assert out.accounting.critical_steps == 1 + 3 + 1 + 1 + 1  # step1 max(3, 0) ; resume 1


async def test_rejects_empty_task() -> None:
    swarm, _ = _swarm(lambda c: Reply(text="x"))
    with pytest.raises(ValueError, match="non-empty task"):
        await swarm.run("  ")


async def test_wall_clock_budget_aborts_the_run() -> None:
    swarm, _ = _swarm(route(fan_out(["a", "b"]), lambda c: HANG),
                      limits=BudgetLimits(wall_clock_s=0.3))
    out = await asyncio.wait_for(swarm.run("Never ends."), 5)
    assert out.state == "aborted"
    assert {a.state for a in out.agents} == {"aborted"}


def test_agent_specs_are_checked_against_providers_and_tools() -> None:
    provider = ScriptedProvider([])
    with pytest.raises(ValueError, match="unknown provider 'fast'"):
        Swarm(provider, specs=[AgentSpec(name="a", system_prompt="p", provider="fast")])
    with pytest.raises(ValueError, match=r"unknown tools \['search'\]"):
        Swarm(provider, specs=[AgentSpec(name="a", system_prompt="p", tools=("search",))])
    fast = ScriptedProvider([])
    swarm = Swarm(provider, providers={"fast": fast},
                  specs=[AgentSpec(name="a", system_prompt="p", provider="fast")])
    assert swarm.state.specs["a"].provider == "fast"


def test_subagent_tools_must_be_registered() -> None:
    with pytest.raises(ValueError, match="unregistered tools \\['calculator'\\]"):
        Swarm(ScriptedProvider([]), config=SwarmConfig(subagent_tools=("calculator",)))
