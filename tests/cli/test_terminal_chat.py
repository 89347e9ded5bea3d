"""The terminal chat: tools run and show, answers stream, history persists, reset clears."""

from __future__ import annotations

import io

from openk2.agent.llm.scripted import ChatCall, Reply, ScriptedProvider, call
from openk2.agent.tools.workspace import world_tools
from openk2.cli.chat import TerminalChat
from openk2.train.synthetic import ToolWorld


def _model(c: ChatCall) -> Reply:
    """Calls the calculator for a new question, answers with the tool result after it."""
    last = c.messages[-1]
    if last.role == "tool":
        return Reply(text=last.content)
    expr = last.content.removeprefix("What is ").rstrip("?")
    return Reply(tool_calls=[call("calculator", 0, expression=expr)])


async def test_a_turn_runs_tools_and_keeps_history() -> None:
    out = io.StringIO()
    provider = ScriptedProvider(_model)
    chat = TerminalChat(provider, world_tools(ToolWorld()), "sys", out=out)
    assert await chat.ask("What is 6*7?") == "42"
    assert "-> calculator" in out.getvalue() and "<- 42" in out.getvalue()
    assert await chat.ask("What is 1+1?") == "2"
    roles = [m.role for m in provider.calls[-1].messages]
    first_turn = ["user", "assistant", "tool", "assistant"]
    assert roles == ["system", *first_turn, "user", "assistant", "tool"]
    chat.reset()
    await chat.ask("What is 2+2?")
    assert [m.role for m in provider.calls[-1].messages] == ["system", "user", "assistant", "tool"]


async def test_a_model_that_never_answers_is_stopped() -> None:
    def loop(c: ChatCall) -> Reply:
        n = len(c.messages)
        return Reply(tool_calls=[call("calculator", n, expression=str(n))])

    chat = TerminalChat(ScriptedProvider(loop), world_tools(ToolWorld()), "s", out=io.StringIO(),
                        max_steps=3)
    assert (await chat.ask("go")).startswith("(stopped:")
