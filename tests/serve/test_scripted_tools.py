"""Exact model outputs (via a scripted model) through the real engine, parser and server:
tool_choice=auto parsing, botched calls returned as content, reasoning deltas."""

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


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_tool_call_becomes_content_and_a_warning(
    scripted: tuple, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    bad = SECTION.replace("{ARGS}", '{"city": Paris')
    client = say(scripted, "Sure." + bad)
    kw = {"model": "scripted", "messages": USER, "tools": TOOLS,
          "extra_body": {"thinking": {"type": "disabled"}}}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="openk2.serve.serving"):
        if stream:
            chunks = list(client.chat.completions.create(stream=True, **kw))
            content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
            finish = chunks[-1].choices[0].finish_reason
        else:
            message = client.chat.completions.create(**kw).choices[0]
            content, finish = message.message.content or "", message.finish_reason
            assert not message.message.tool_calls
    assert content.startswith("Sure.") and '{"city": Paris' in content
    assert finish == "stop"
    assert any("invalid_arguments" in r.getMessage() for r in caplog.records)


def test_stop_id_text_is_not_in_the_output(scripted: tuple) -> None:
    client = say(scripted, "Hello!<|im_end|>ignored")
    resp = client.chat.completions.create(
        model="scripted", messages=USER, extra_body={"thinking": {"type": "disabled"}}
    )
    assert resp.choices[0].message.content == "Hello!"
    assert resp.choices[0].finish_reason == "stop"
