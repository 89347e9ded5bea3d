"""OpenAI API conformance, driven by the official `openai` client against a live server.

The served model is the seeded random `debug` preset with the bundled tokenizer, so outputs are
gibberish but fully deterministic under a seed or at temperature 0.
"""

import json

import jsonschema
import pytest
from openai import OpenAI

INSTANT = {"thinking": {"type": "disabled"}}
USER = [{"role": "user", "content": "Hello there, how are you?"}]


def text_of(message: object) -> str:
    return (getattr(message, "reasoning_content", None) or "") + (message.content or "")  # type: ignore[attr-defined]


def test_models_lists_the_served_model(client: OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["debug"]
    assert models.data[0].object == "model"


def test_chat_completion_shape_and_usage(client: OpenAI) -> None:
    resp = client.chat.completions.create(model="debug", messages=USER, max_tokens=8, seed=1)
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    (choice,) = resp.choices
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert text_of(choice.message)  # thinking is on by default: reasoning first
    usage = resp.usage
    assert usage.prompt_tokens > 5 and 1 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_stream_and_non_stream_agree_under_a_seed(client: OpenAI) -> None:
    kw = {"model": "debug", "messages": USER, "max_tokens": 10, "seed": 42}
    full = client.chat.completions.create(**kw)
    chunks = list(client.chat.completions.create(stream=True, **kw))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(
        (getattr(c.choices[0].delta, "reasoning_content", None) or "")
        + (c.choices[0].delta.content or "")
        for c in chunks
        if c.choices
    )
    assert streamed == text_of(full.choices[0].message)
    assert chunks[-1].choices[0].finish_reason == full.choices[0].finish_reason


def test_thinking_toggle_moves_text_between_reasoning_and_content(client: OpenAI) -> None:
    kw = {"model": "debug", "messages": USER, "max_tokens": 6, "temperature": 0}
    thinking = client.chat.completions.create(**kw).choices[0].message
    assert getattr(thinking, "reasoning_content", None) and not thinking.content
    for extra in (INSTANT, {"chat_template_kwargs": {"thinking": False}}):
        instant = client.chat.completions.create(extra_body=extra, **kw).choices[0].message
        assert instant.content and not getattr(instant, "reasoning_content", None)


def test_max_tokens_caps_the_output(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=7, extra_body={"ignore_eos": True}
    )
    assert resp.choices[0].finish_reason == "length" and resp.usage.completion_tokens == 7
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_completion_tokens=3, extra_body={"ignore_eos": True}
    )
    assert resp.usage.completion_tokens == 3


def test_stop_string_cuts_the_text(client: OpenAI) -> None:
    kw = {"model": "debug", "messages": USER, "max_tokens": 12, "temperature": 0,
          "extra_body": {**INSTANT, "ignore_eos": True}}  # fmt: skip
    free = client.chat.completions.create(**kw).choices[0].message.content
    stop = free[5:8]
    cut = client.chat.completions.create(stop=[stop, "never-appears"], **kw).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.message.content == free[: free.index(stop)]


def test_n_choices_are_distinct_and_counted(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, n=3, max_tokens=6, seed=5, extra_body={"ignore_eos": True}
    )
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert len({text_of(c.message) for c in resp.choices}) == 3
    assert resp.usage.completion_tokens == 18


def test_seed_determinism(client: OpenAI) -> None:
    kw = {"model": "debug", "messages": USER, "max_tokens": 8, "temperature": 1.0}
    a = client.chat.completions.create(seed=123, **kw).choices[0].message
    b = client.chat.completions.create(seed=123, **kw).choices[0].message
    c = client.chat.completions.create(seed=124, **kw).choices[0].message
    assert text_of(a) == text_of(b) != text_of(c)


def test_include_usage_adds_a_final_usage_chunk(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="debug", messages=USER, max_tokens=5, stream=True, n=2,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
        )
    )  # fmt: skip
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert all(c.usage is None for c in chunks[:-1])
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["length", "length"]
    plain = list(client.chat.completions.create(model="debug", messages=USER, max_tokens=3,
                                                stream=True))  # fmt: skip
    assert all(c.usage is None for c in plain)


def test_logprobs_report_the_chosen_token_and_alternatives(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    entries = resp.choices[0].logprobs.content
    assert len(entries) == 4
    for entry in entries:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token  # greedy picks the best


def test_reasoning_content_in_history_is_accepted(client: OpenAI) -> None:
    messages = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Simple sum."},
        {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
    ]
    resp = client.chat.completions.create(model="debug", messages=messages, max_tokens=4)
    assert resp.usage.prompt_tokens > 10


def test_text_completions(client: OpenAI) -> None:
    resp = client.completions.create(
        model="debug", prompt=["Once upon a time", "The end"], max_tokens=5, n=2, seed=3,
        extra_body={"ignore_eos": True},
    )  # fmt: skip
    assert resp.object == "text_completion" and [c.index for c in resp.choices] == [0, 1, 2, 3]
    assert resp.usage.completion_tokens == 20
    stream = list(client.completions.create(model="debug", prompt=[1, 2, 3], max_tokens=4,
                                            stream=True, temperature=0))  # fmt: skip
    text = "".join(c.choices[0].text for c in stream if c.choices)
    echo = client.completions.create(model="debug", prompt=[1, 2, 3], max_tokens=4,
                                     temperature=0, echo=True)  # fmt: skip
    assert echo.choices[0].text.endswith(text)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 24},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object",
                                                     "properties": {"tz": {"type": "string"}}}},
}  # fmt: skip


def check_weather_args(arguments: str) -> None:
    """Schema-valid arguments. The schema bounds every value: a random model has no reason to
    end an unbounded string or number, so only bounds make its output finish."""
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])  # type: ignore[index]


@pytest.mark.parametrize("thinking", [True, False])
def test_tool_choice_named_forces_a_valid_call(client: OpenAI, thinking: bool) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, tools=[WEATHER, CLOCK], max_tokens=200, seed=9,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        extra_body={} if thinking else INSTANT,
    )  # fmt: skip
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id == "functions.get_weather:0"
    check_weather_args(call.function.arguments)


def test_tool_choice_required_streams_valid_calls(client: OpenAI) -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "functions.get_time:0",
         "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "functions.get_time:0", "content": "noon"},
    ]  # fmt: skip
    chunks = list(
        client.chat.completions.create(
            model="debug", messages=history, tools=[WEATHER, CLOCK], tool_choice="required",
            max_tokens=300, stream=True, seed=4, extra_body=INSTANT,
        )
    )  # fmt: skip
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls and chunks[-1].choices[0].finish_reason == "tool_calls"
    for i, call in enumerate(calls):
        assert call.index == i and call.id.endswith(f":{i + 1}")  # the counter continues
        assert call.function.name in ("get_weather", "get_time")
        json.loads(call.function.arguments)


def test_tool_choice_none_never_calls(client: OpenAI) -> None:
    resp = client.chat.completions.create(
        model="debug", messages=USER, tools=[WEATHER], tool_choice="none", max_tokens=30,
        extra_body=INSTANT, logit_bias={"7937": 0},
    )  # fmt: skip
    assert not resp.choices[0].message.tool_calls
    assert "<|tool_calls_section_begin|>" not in (resp.choices[0].message.content or "")


def test_response_format_json_schema(client: OpenAI) -> None:
    schema = WEATHER["function"]["parameters"]  # type: ignore[index]
    resp = client.chat.completions.create(
        model="debug", messages=USER, max_tokens=200, seed=2, extra_body=INSTANT,
        response_format={"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
    )  # fmt: skip
    check_weather_args(resp.choices[0].message.content or "")
