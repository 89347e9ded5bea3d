"""Exact model outputs (via a scripted model) through the real engine, parser and server:
tool_choice=auto parsing, botched calls returned marked-up-free with their raw arguments,
names recovered from the declared tools, reasoning deltas."""

import json
import logging
from collections.abc import Iterator

import pytest
from openai import OpenAI

from openk2.tokenizer import default_tokenizer
from serve.live import LiveServer, ScriptedLM, serving

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
USER = [{"role": "user", "content": "Weather in Paris?"}]
SECTION = (
    "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
    "<|tool_call_argument_begin|>{ARGS}<|tool_call_end|><|tool_calls_section_end|>"
)


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[LiveServer, ScriptedLM]]:
    tokenizer = default_tokenizer()
    model = ScriptedLM(tokenizer)
    with serving(model, tokenizer, name="scripted") as live:
        yield live, model


def say(scripted: tuple[LiveServer, ScriptedLM], text: str) -> OpenAI:
    live, model = scripted
    model.script = default_tokenizer().encode(text)
    return OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)


def test_auto_tool_call_is_parsed_with_reasoning(scripted: tuple) -> None:
    args = '{"city": "Paris"}'
    client = say(scripted, "Need the weather.</think>Checking." + SECTION.replace("{ARGS}", args))
    resp = client.chat.completions.create(model="scripted", messages=USER, tools=TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.reasoning_content == "Need the weather."  # type: ignore[attr-defined]
    assert choice.message.content == "Checking."
    (call,) = choice.message.tool_calls
    assert call.id == "functions.get_weather:0" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_streamed_tool_call_arrives_whole(scripted: tuple) -> None:
    client = say(scripted, "</think>" + SECTION.replace("{ARGS}", '{"city": "Oslo"}'))
    chunks = list(client.chat.completions.create(
        model="scripted", messages=USER, tools=TOOLS, stream=True,
        extra_body={"thinking": {"type": "disabled"}},
    ))  # fmt: skip
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and json.loads(calls[0].function.arguments) == {"city": "Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def ask(client: OpenAI, stream: bool, tools: list[dict] = TOOLS) -> tuple[str, list, str]:
    """(content, tool calls as (id, name, arguments), finish_reason), streamed or not."""
    kw = {"model": "scripted", "messages": USER, "tools": tools,
          "extra_body": {"thinking": {"type": "disabled"}}}  # fmt: skip
    if not stream:
        choice = client.chat.completions.create(**kw).choices[0]
        calls = [(c.id, c.function.name, c.function.arguments)
                 for c in choice.message.tool_calls or []]
        return choice.message.content or "", calls, choice.finish_reason
    chunks = [c for c in client.chat.completions.create(stream=True, **kw) if c.choices]
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [(tc.id, tc.function.name, tc.function.arguments)
             for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    return content, calls, chunks[-1].choices[0].finish_reason


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_tool_call_keeps_its_raw_arguments_and_warns(
    scripted: tuple, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = say(scripted, "Sure." + SECTION.replace("{ARGS}", '{"city": Paris'))
    with caplog.at_level(logging.WARNING, logger="openk2.serve.serving"):
        content, calls, finish = ask(client, stream)
    assert content == "Sure."
    assert calls == [("functions.get_weather:0", "get_weather", '{"city": Paris')]
    assert finish == "tool_calls"
    assert any("invalid_arguments" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("stream", [False, True])
def test_bare_counter_id_gets_the_declared_tool_name(scripted: tuple, stream: bool) -> None:
    text = SECTION.replace("functions.get_weather:0", "0").replace("{ARGS}", '{"city": "Rome"}')
    content, calls, finish = ask(say(scripted, "Ok." + text), stream)
    assert (content, finish) == ("Ok.", "tool_calls")
    assert calls == [("functions.get_weather:0", "get_weather", '{"city": "Rome"}')]


@pytest.mark.parametrize("stream", [False, True])
def test_unattributable_call_is_dropped_without_markup(scripted: tuple, stream: bool) -> None:
    twins = [*TOOLS, {"type": "function", "function": {"name": "get_forecast", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    text = SECTION.replace("functions.get_weather:0", "call_7").replace("{ARGS}", '{"city": 1}')
    content, calls, finish = ask(say(scripted, "Hm." + text + " done"), stream, twins)
    assert (content, calls, finish) == ("Hm. done", [], "stop")


def test_stop_id_text_is_not_in_the_output(scripted: tuple) -> None:
    client = say(scripted, "Hello!<|im_end|>ignored")
    resp = client.chat.completions.create(
        model="scripted", messages=USER, extra_body={"thinking": {"type": "disabled"}}
    )
    assert resp.choices[0].message.content == "Hello!"
    assert resp.choices[0].finish_reason == "stop"


async def test_openk2_chat_prints_no_markup_for_odd_k2_calls(scripted: tuple) -> None:
    """`openk2 chat`'s path (TerminalChat over HTTP): a call with a bare-counter id and no
    section begin is attributed from the declared tools, and no marker reaches the terminal."""
    import io

    from openk2.agent.llm.openai_compat import OpenAICompatProvider
    from openk2.agent.tools.workspace import world_tools
    from openk2.cli.chat import TerminalChat
    from openk2.train.synthetic import ToolWorld

    say(scripted, '</think>Let me compute.<|tool_call_end|><|tool_call_begin|>0'
                  '<|tool_call_argument_begin|>{"expression": "6*7"}<|tool_call_end|>')
    out = io.StringIO()
    provider = OpenAICompatProvider(scripted[0].url + "/v1", "scripted")
    chat = TerminalChat(provider, world_tools(ToolWorld()), "sys", out=out, max_steps=1)
    try:
        await chat.ask("What is 6*7?")
    finally:
        await provider.aclose()
    printed = out.getvalue()
    assert "Let me compute." in printed and "-> calculator" in printed and "<- 42" in printed
    assert "<|" not in printed


def test_a_call_without_declared_tools_leaves_empty_content_not_null(scripted: tuple) -> None:
    """A model that calls a tool nobody offered (the embedded model on "Hello!") gets its call
    dropped; the client still receives a string, never markers and never a null content."""
    client = say(scripted, "</think>" + SECTION.replace("{ARGS}", '{"city": "Oslo"}'))
    resp = client.chat.completions.create(model="scripted", messages=USER)
    message = resp.choices[0].message
    assert message.content == "" and message.tool_calls is None
