"""SFT line formats: OpenAI fine-tuning chats with tools, ShareGPT, and errors naming the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openk2.tokenizer.chat import render_chat_segments
from openk2.train.chat_formats import chat_from_line
from openk2.train.data import iter_chats

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "functions.get_weather:0",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}
OPENAI = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": CALL["id"], "content": "rain, 4C"},
        {"role": "assistant", "content": "Rainy, 4C."},
    ],
    "tools": [WEATHER],
}
SHAREGPT = {
    "system": "Be brief.",
    "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}',
        },
        {"from": "observation", "value": "rain, 4C"},
        {"from": "gpt", "value": "Rainy, 4C."},
    ],
    "tools": json.dumps([WEATHER["function"]]),
}


def _texts(chat: tuple) -> list[tuple[str, bool]]:
    return [(s.text, s.trainable) for s in render_chat_segments(*chat)]


def test_openai_chat_with_tools_passes_unchanged() -> None:
    messages, tools = chat_from_line(OPENAI)
    assert messages is OPENAI["messages"] and tools == [WEATHER]


def test_sharegpt_with_tool_turns_renders_like_the_openai_chat() -> None:
    messages, tools = chat_from_line(SHAREGPT)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2]["tool_calls"][0]["id"] == messages[3]["tool_call_id"] == CALL["id"]
    assert tools == [WEATHER]
    assert _texts((messages, tools)) == _texts((OPENAI["messages"], OPENAI["tools"]))


def _broken(**changes: object) -> dict:
    chat = json.loads(json.dumps(OPENAI))
    for path, value in changes.items():
        target = chat
        *parents, last = path.split("__")
        for key in parents:
            target = target[int(key) if key.isdigit() else key]
        target[int(last) if last.isdigit() else last] = value
    return chat


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (_broken(messages__1__role="human"), r"messages\[1\]\.role is 'human'"),
        (_broken(messages__2__tool_calls__0__function__arguments="{city"),
         r"tool_calls\[0\]\.function\.arguments is not valid JSON"),
        (_broken(messages__2__tool_calls__0__function__name="get_time"),
         r"calls 'get_time', which 'tools' does not declare"),
        (_broken(messages__3__tool_call_id="nope"), r"'nope' answers no earlier tool call"),
        (_broken(messages__4__weight=0), r"messages\[4\]\.weight 0"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
        (OPENAI | {"functions": []}, "legacy 'functions'"),
        ({"prompt": "x", "completion": "y"}, "'messages' .* or 'conversations'"),
        ({"conversations": [{"from": "bot", "value": "x"}]}, r"conversations\[0\]\.from is 'bot'"),
        ({"conversations": [{"from": "observation", "value": "x"}]}, "no function_call before"),
        ({"conversations": [{"from": "function_call", "value": "get_weather()"}]},
         r"conversations\[0\]\.value is not a JSON function call"),
    ],
)  # fmt: skip
def test_bad_lines_name_the_file_line_and_field(tmp_path: Path, line: dict, error: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(OPENAI) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=rf"data\.jsonl:2: .*{error}"):
        list(iter_chats([path], render_chat_segments, lambda text: [0] * len(text)))
