"""The agent loop: tool round trips, concurrency, limits, loop guard, resume, events."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from openk2.agent.llm import Message, ToolCall, system, user
from openk2.agent.llm.scripted import Reply, ScriptedProvider, call
from openk2.agent.loop import AgentRunner, MaxStepsReachedError, Wire
from openk2.agent.loop.events import StepBegin, StepEnd, ToolCallFinished, TurnEnd
from openk2.agent.loop.runner import final_answer
from openk2.agent.tools import Toolset, tool


class Q(BaseModel):
    q: str


@tool()
async def lookup(p: Q) -> str:
    """Look something up."""
    await asyncio.sleep(0.05)
    return f"answer to {p.q}"


@tool()
async def crash(p: Q) -> str:
    """Always breaks."""
    raise RuntimeError("tool bug")


def _runner(script, **kw) -> AgentRunner:
    provider = ScriptedProvider(script)
    history = [system("You are terse."), user("go")]
    return AgentRunner(provider, Toolset([lookup, crash]), history, **kw)


async def test_tool_round_trip_and_history_shape() -> None:
    runner = _runner([Reply(tool_calls=[call("lookup", 0, q="x")], reasoning="hm"),
                      Reply(text="done")])
    outcome = await runner.run()
    assert outcome.stop_reason == "no_tool_calls" and outcome.text == "done"
    assert outcome.steps == 2 and outcome.usage.total_tokens > 0
    roles = [m.role for m in runner.history]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert runner.history[2].reasoning_content == "hm"
    assert runner.history[3].content == "answer to x"
    second_call = runner.provider.calls[1].messages  # type: ignore[attr-defined]
    assert second_call[-1].tool_call_id == "functions.lookup:0"


async def test_tool_calls_of_one_step_run_concurrently() -> None:
    calls = [call("lookup", i, q=str(i)) for i in range(10)]
    runner = _runner([Reply(tool_calls=calls), Reply(text="ok")])
    start = asyncio.get_running_loop().time()
    await runner.run()
    assert asyncio.get_running_loop().time() - start < 0.05 * 5
    assert [m.content for m in runner.history[3:13]] == [f"answer to {i}" for i in range(10)]


async def test_max_steps_and_loop_guard() -> None:
    looping = lambda c: Reply(tool_calls=[call("lookup", 0, q="same")])  # noqa: E731
    outcome = await _runner(looping, repeat_limit=3).run()
    assert outcome.stop_reason == "tool_call_repeat" and outcome.steps == 3
    varied = lambda c: Reply(tool_calls=[call("lookup", 0, q=str(len(c.messages)))])  # noqa: E731
    with pytest.raises(MaxStepsReachedError) as info:
        await _runner(varied, max_steps=4).run()
    assert info.value.steps == 4 and info.value.last is not None


async def test_tool_bug_propagates_and_cancels_siblings() -> None:
    runner = _runner([Reply(tool_calls=[call("lookup", 0, q="a"), call("crash", 1, q="b")])])
    with pytest.raises(RuntimeError, match="tool bug"):
        await runner.run()


async def test_resume_finishes_an_interrupted_step_without_a_new_llm_call() -> None:
    pending = Message(role="assistant", tool_calls=(
        call("lookup", 0, q="a"), ToolCall("functions.lookup:1", "lookup", '{"q": "b"}')))
    history = [user("go"), pending, Message(role="tool", content="kept",
                                            tool_call_id="functions.lookup:0")]
    provider = ScriptedProvider([Reply(text="final")])
    runner = AgentRunner(provider, Toolset([lookup]), history, steps_done=1)
    outcome = await runner.run()
    assert outcome.text == "final" and outcome.steps == 2 and len(provider.calls) == 1
    assert [m.content for m in runner.history if m.role == "tool"] == ["kept", "answer to b"]


async def test_a_restored_history_ending_in_an_answer_is_finished() -> None:
    answered = [user("go"), Message(role="assistant", content="the answer")]
    provider = ScriptedProvider([])  # any LLM call would exhaust the script
    runner = AgentRunner(provider, Toolset([lookup]), answered, steps_done=3)
    outcome = await runner.run()
    assert (outcome.text, outcome.stop_reason, outcome.steps) == ("the answer", "no_tool_calls", 3)
    assert provider.calls == [] and runner.history == answered
    follow_up = ScriptedProvider([Reply(text="more")])
    again = await AgentRunner(follow_up, Toolset(), [*answered, user("and?")]).run()
    assert again.text == "more" and len(follow_up.calls) == 1  # a new user turn is new work


def test_final_answer_only_for_an_assistant_message_without_calls() -> None:
    answer = Message(role="assistant", content="x")
    assert final_answer([user("go"), answer]) is answer
    assert final_answer([]) is None and final_answer([user("go")]) is None
    calling = Message(role="assistant", tool_calls=(call("lookup", 0, q="a"),))
    assert final_answer([user("go"), calling]) is None


async def test_events_on_the_wire() -> None:
    wire = Wire()
    seen: list[object] = []
    wire.subscribe(seen.append)
    await _runner([Reply(tool_calls=[call("lookup", 0, q="x")]), Reply(text="ok", chunk=1)],
                  wire=wire, agent_id="a1").run()
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "StepBegin" and kinds[-1] == "TurnEnd"
    assert kinds.count("StepEnd") == 2 and kinds.count("AssistantDelta") == 2
    assert any(isinstance(e, ToolCallFinished) and e.result.output == "answer to x" for e in seen)
    assert all(getattr(e, "agent_id", "a1") == "a1" for e in seen)
    assert isinstance(seen[0], StepBegin) and isinstance(seen[-1], TurnEnd)
    assert isinstance(seen[-2], StepEnd)
