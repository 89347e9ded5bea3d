"""The Jinja K2.6 template written into the GGUF renders exactly what openk2's renderer does."""

from __future__ import annotations

import json
from typing import Any

import jinja2
import pytest

from openk2.export.gguf.chat_template import k26_chat_template
from openk2.tokenizer.chat.declare import tools_ts_str
from openk2.tokenizer.chat.template import render_chat

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get weather information",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]}}}}}
CALL = {"id": "functions.get_weather:0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Beijing"}'}}
OBJECT_CALL = {"id": "functions.get_weather:1", "type": "function",
               "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}

CONVERSATIONS: dict[str, list[dict[str, Any]]] = {
    "single": [{"role": "user", "content": "Hi there"}],
    "system_and_history": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "add"},
        {"role": "user", "content": "and 3+3?"}],
    "agentic_turn": [
        {"role": "user", "content": "Weather in Beijing and Paris?"},
        {"role": "assistant", "content": "", "reasoning": "need tools",
         "tool_calls": [CALL, OBJECT_CALL]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
        {"role": "tool", "name": "get_weather", "tool_call_id": "functions.get_weather:1",
         "content": [{"type": "text", "text": "rain"}]}],
    "parts_and_names": [
        {"role": "user", "name": "alice", "content": [
            {"type": "text", "text": "What is this? "},
            {"type": "image_url", "image_url": {"url": "data:"}},
            {"type": "text", "text": "and this"}, {"type": "video_url", "video_url": {}}]},
        {"role": "assistant", "content": None, "reasoning": "look"},
        {"role": "user", "content": "thanks"}],
}


def _jinja(messages, tools=None, *, trim: bool = True, **kwargs: Any) -> str:
    """Render as transformers does (trim_blocks + lstrip_blocks, a non-ASCII-keeping tojson);
    `trim=False` is plain Jinja: the template's whitespace control must not depend on it."""
    env = jinja2.Environment(trim_blocks=trim, lstrip_blocks=trim)
    env.filters["tojson"] = lambda value, separators=None: json.dumps(
        value, ensure_ascii=False, separators=separators)
    return env.from_string(k26_chat_template()).render(messages=messages, tools=tools, **kwargs)


@pytest.mark.parametrize("trim", [True, False])
@pytest.mark.parametrize("name", CONVERSATIONS)
@pytest.mark.parametrize("flags", [{}, {"thinking": False}, {"preserve_thinking": True},
                                   {"add_generation_prompt": False}])
def test_matches_openk2s_renderer(name: str, flags: dict[str, bool], trim: bool) -> None:
    messages = CONVERSATIONS[name]
    jinja_flags = {"add_generation_prompt": True, **flags}
    assert _jinja(messages, trim=trim, **jinja_flags) == render_chat(messages, **flags)


def test_tools_as_typescript_when_the_caller_gives_it() -> None:
    messages = CONVERSATIONS["agentic_turn"]
    declaration = tools_ts_str([WEATHER_TOOL])
    assert declaration
    got = _jinja(messages, [WEATHER_TOOL], tools_ts_str=declaration, add_generation_prompt=True)
    assert got == render_chat(messages, [WEATHER_TOOL])


def test_tools_as_compact_json_otherwise() -> None:
    odd_tool = {"function": {"name": "f", "parameters": {"type": "object"}}, "type": "function"}
    messages = CONVERSATIONS["single"]
    got = _jinja(messages, [odd_tool], add_generation_prompt=True)
    assert got.startswith('<|im_system|>tool_declare<|im_middle|>[{"function":{"name":"f"')
    assert got.endswith("<|im_assistant|>assistant<|im_middle|><think>")
