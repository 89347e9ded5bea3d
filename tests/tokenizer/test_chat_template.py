"""Golden K2.6 prompts: every template rule, with hand-checked expected strings."""

from typing import Any

import pytest

from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.chat import (
    MessageFormatError,
    Segment,
    encode_chat,
    encode_chat_with_mask,
    render_chat,
    render_chat_segments,
    video_chunk_prompt,
)

GEN = "<|im_assistant|>assistant<|im_middle|><think>"
GEN_INSTANT = "<|im_assistant|>assistant<|im_middle|><think></think>"
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get weather information",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["c", "f"]}}}}}
WEATHER_TS = ('# Tools\n\n## functions\nnamespace functions {\n// Get weather information\n'
              'type get_weather = (_: {\n  // City name\n  city: string,\n  unit?: "c" | "f"\n'
              '}) => any;\n}\n')


def call(idx: int, city: str) -> dict[str, Any]:
    return {"id": f"functions.get_weather:{idx}", "type": "function",
            "function": {"name": "get_weather", "arguments": f'{{"city":"{city}"}}'}}


def test_system_and_user_without_default_system_prompt() -> None:
    assert render_chat([{"role": "user", "content": "Hi"}]) == (
        "<|im_user|>user<|im_middle|>Hi<|im_end|>" + GEN)
    assert render_chat([{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Hi"}]) == (
        "<|im_system|>system<|im_middle|>Be brief.<|im_end|>"
        "<|im_user|>user<|im_middle|>Hi<|im_end|>" + GEN)


def test_generation_prompt_modes() -> None:
    msgs = [{"role": "user", "content": "Hi"}]
    assert render_chat(msgs, thinking=False).endswith("<|im_end|>" + GEN_INSTANT)
    assert render_chat(msgs, add_generation_prompt=False) == (
        "<|im_user|>user<|im_middle|>Hi<|im_end|>")


def test_tool_declaration_comes_first_then_call_and_result() -> None:
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Weather in Beijing?"},
        {"role": "assistant", "content": "", "reasoning_content": "Use the tool.",
         "tool_calls": [call(0, "Beijing")]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "name": "get_weather",
         "content": '{"temp": 20}'},
    ]
    assert render_chat(msgs, [WEATHER_TOOL]) == (
        "<|im_system|>tool_declare<|im_middle|>" + WEATHER_TS + "<|im_end|>"
        "<|im_system|>system<|im_middle|>S<|im_end|>"
        "<|im_user|>user<|im_middle|>Weather in Beijing?<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|><think>Use the tool.</think>"
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
        '<|tool_call_argument_begin|>{"city":"Beijing"}<|tool_call_end|>'
        "<|tool_calls_section_end|><|im_end|>"
        "<|im_system|>get_weather<|im_middle|>## Return of functions.get_weather:0\n"
        '{"temp": 20}<|im_end|>' + GEN)


def test_multiple_calls_ids_echoed_and_object_arguments_serialised() -> None:
    msgs = [{"role": "user", "content": "Q"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                call(3, "Paris"),
                {"id": "call_abc", "function": {"name": "lookup",
                                                "arguments": {"q": "é", "n": [1, 2]}}}]},
            {"role": "tool", "tool_call_id": "call_abc", "content": "ok"}]
    assert render_chat(msgs, add_generation_prompt=False) == (
        "<|im_user|>user<|im_middle|>Q<|im_end|>"
        "<|im_assistant|>assistant<|im_middle|><think></think>Checking."
        "<|tool_calls_section_begin|>"
        '<|tool_call_begin|>functions.get_weather:3<|tool_call_argument_begin|>{"city":"Paris"}'
        "<|tool_call_end|>"
        '<|tool_call_begin|>call_abc<|tool_call_argument_begin|>{"q": "é", "n": [1, 2]}'
        "<|tool_call_end|><|tool_calls_section_end|><|im_end|>"
        "<|im_system|>tool<|im_middle|>## Return of call_abc\nok<|im_end|>")


MULTI_TURN = [
    {"role": "user", "content": "A"},
    {"role": "assistant", "reasoning_content": "r1", "content": "a1"},
    {"role": "user", "content": "B"},
    {"role": "assistant", "reasoning_content": "r2", "content": "",
     "tool_calls": [call(0, "X")]},
    {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "t"},
    {"role": "assistant", "reasoning_content": "r3", "content": "",
     "tool_calls": [call(1, "Y")]},
    {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": "u"},
]


def _assistant(think: str, content: str = "", calls: str = "") -> str:
    return f"<|im_assistant|>assistant<|im_middle|><think>{think}</think>{content}{calls}<|im_end|>"


def _section(idx: int, city: str) -> str:
    return ("<|tool_calls_section_begin|><|tool_call_begin|>"
            f"functions.get_weather:{idx}<|tool_call_argument_begin|>"
            f'{{"city":"{city}"}}<|tool_call_end|><|tool_calls_section_end|>')


def _tool_result(idx: int, text: str) -> str:
    return ("<|im_system|>tool<|im_middle|>"
            f"## Return of functions.get_weather:{idx}\n{text}<|im_end|>")


def test_history_rule_drops_reasoning_up_to_last_plain_assistant() -> None:
    assert render_chat(MULTI_TURN) == (
        "<|im_user|>user<|im_middle|>A<|im_end|>" + _assistant("", "a1")
        + "<|im_user|>user<|im_middle|>B<|im_end|>"
        + _assistant("r2", calls=_section(0, "X")) + _tool_result(0, "t")
        + _assistant("r3", calls=_section(1, "Y")) + _tool_result(1, "u") + GEN)


def test_preserve_thinking_keeps_every_reasoning() -> None:
    text = render_chat(MULTI_TURN, preserve_thinking=True)
    assert _assistant("r1", "a1") in text
    assert _assistant("r2", calls=_section(0, "X")) in text


def test_instant_mode_drops_all_reasoning() -> None:
    text = render_chat(MULTI_TURN, thinking=False)
    assert "r1" not in text and "r2" not in text and "r3" not in text
    assert text.endswith(_tool_result(1, "u") + GEN_INSTANT)


def test_final_plain_assistant_is_history_too() -> None:
    msgs = [{"role": "user", "content": "A"},
            {"role": "assistant", "reasoning_content": "r", "content": "a"}]
    assert render_chat(msgs, add_generation_prompt=False) == (
        "<|im_user|>user<|im_middle|>A<|im_end|>" + _assistant("", "a"))


def test_reasoning_field_wins_over_reasoning_content() -> None:
    msgs = [{"role": "user", "content": "A"},
            {"role": "assistant", "reasoning": "new", "reasoning_content": "old",
             "content": "", "tool_calls": [call(0, "Z")]}]
    assert "<think>new</think>" in render_chat(msgs)
    msgs[1]["reasoning"] = None
    assert "<think>old</think>" in render_chat(msgs)


def test_media_placeholders_and_text_parts() -> None:
    msgs = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:..."}},
        {"type": "image", "image": "x.png"},
        {"image_url": {"url": "no-type.png"}},
        {"type": "text", "text": "Compare"},
        {"type": "video_url", "video_url": {"url": "v.mp4"}},
        {"type": "text", "text": " them."},
    ]}]
    image = "<|media_begin|>image<|media_content|><|media_pad|><|media_end|>\n"
    assert render_chat(msgs, add_generation_prompt=False) == (
        "<|im_user|>user<|im_middle|>" + image * 3 + "Compare"
        "<|kimi_k25_video_placeholder|>\n them.<|im_end|>")
    assert video_chunk_prompt("00:00:01.500") == (
        "00:00:01.500<|media_begin|>video<|media_content|><|media_pad|><|media_end|>")


def test_names_and_other_roles() -> None:
    msgs = [{"role": "user", "name": "alice", "content": "hi"},
            {"role": "developer", "content": "dev note"},
            {"role": "system", "content": None}]
    assert render_chat(msgs, add_generation_prompt=False) == (
        "<|im_user|>alice<|im_middle|>hi<|im_end|>"
        "<|im_system|>developer<|im_middle|>dev note<|im_end|>"
        "<|im_system|>system<|im_middle|><|im_end|>")


def test_json_fallback_declaration() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"oneOf": []}}}}}
    assert render_chat([{"role": "user", "content": "q"}], [tool], add_generation_prompt=False) == (
        '<|im_system|>tool_declare<|im_middle|>[{"function":{"name":"f","parameters":'
        '{"properties":{"x":{"oneOf":[]}},"type":"object"}},"type":"function"}]<|im_end|>'
        "<|im_user|>user<|im_middle|>q<|im_end|>")


def test_segments_mark_assistant_bodies_trainable() -> None:
    msgs = [{"role": "user", "content": "A"},
            {"role": "assistant", "reasoning_content": "r", "content": "a",
             "tool_calls": [call(0, "X")]},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "t"}]
    segments = render_chat_segments(msgs)
    assert segments == [
        Segment("<|im_user|>user<|im_middle|>A<|im_end|><|im_assistant|>assistant<|im_middle|>",
                False),
        Segment("<think>r</think>a" + _section(0, "X") + "<|im_end|>", True),
        Segment(_tool_result(0, "t") + GEN, False),
    ]
    assert "".join(s.text for s in segments) == render_chat(msgs)


def test_encode_with_mask_matches_encode() -> None:
    tok = default_tokenizer()
    ids, mask = encode_chat_with_mask(tok, MULTI_TURN, [WEATHER_TOOL])
    assert ids == encode_chat(tok, MULTI_TURN, [WEATHER_TOOL])
    trained = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert trained == (_assistant("", "a1")[len("<|im_assistant|>assistant<|im_middle|>"):]
                       + "<think>r2</think>" + _section(0, "X") + "<|im_end|>"
                       + "<think>r3</think>" + _section(1, "Y") + "<|im_end|>")
    assert ids[-1] == tok.token_id("<think>") and not mask[-1]


@pytest.mark.parametrize(("messages", "message"), [
    ("hello", "messages must be a list"),
    ([["user", "hi"]], r"messages\[0\] must be an object"),
    ([{"content": "hi"}], "non-empty string 'role'"),
    ([{"role": "user", "name": 5, "content": "x"}], "name must be a string"),
    ([{"role": "user", "content": 5}], "content must be a string"),
    ([{"role": "user", "content": [{"type": "audio"}]}], "unsupported type 'audio'"),
    ([{"role": "user", "content": [{"type": "text"}]}], "without a string 'text'"),
    ([{"role": "tool", "content": "x"}], "without a 'tool_call_id'"),
    ([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}], "has no 'id'"),
    ([{"role": "assistant", "tool_calls": {"id": "x"}}], "must be a list"),
    ([{"role": "assistant", "tool_calls": [{"id": "x"}]}], "'function' object"),
    ([{"role": "assistant", "reasoning_content": 3, "content": "x"}], "must be a string"),
])
def test_malformed_messages_raise_clear_errors(messages: Any, message: str) -> None:
    with pytest.raises(MessageFormatError, match=message):
        render_chat(messages)


def test_bad_tools_raise_clear_errors() -> None:
    with pytest.raises(MessageFormatError, match="tools must be a list"):
        render_chat([{"role": "user", "content": "x"}], {"type": "function"})  # type: ignore[arg-type]
    with pytest.raises(MessageFormatError, match="not JSON-serializable"):
        render_chat([{"role": "user", "content": "x"}],
                    [{"type": "function", "function": {"name": "f", "parameters": {
                        "type": "object", "properties": {"a": {"x": object()}}}}}])


def test_matches_prompts_published_by_an_independent_k26_harness() -> None:
    """Facts from a public K2.6 end-to-end fixture (InternLM/LMDeploy Kimi-K2.6 benchmark), whose
    prompts were frozen after the official HF processor agreed with them: images render as the
    placeholder plus a newline, no default system prompt, instant-mode generation prompt."""
    image = {"type": "image", "image": "gradient.png"}
    question = {"type": "text", "text": "请用中文简短比较这两张图片。"}
    marker = "<|media_begin|>image<|media_content|><|media_pad|><|media_end|>"
    assert render_chat([{"role": "user", "content": [image, image, question]}],
                       thinking=False) == (
        f"<|im_user|>user<|im_middle|>{marker}\n{marker}\n请用中文简短比较这两张图片。"
        "<|im_end|><|im_assistant|>assistant<|im_middle|><think></think>")


def test_empty_tool_list_declares_nothing() -> None:
    assert render_chat([{"role": "user", "content": "x"}], [], add_generation_prompt=False) == (
        "<|im_user|>user<|im_middle|>x<|im_end|>")
