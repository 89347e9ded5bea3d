"""Golden parses of K2 output: reasoning, content, tool calls and every malformed case."""

from typing import Any

import pytest

from openk2.tokenizer.parse import (
    Delta,
    OutputParser,
    ParseResult,
    ToolCallDelta,
    parse_output,
    parse_tool_call_id,
)

SB, SE = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CB, AB, CE = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"


def tc(idx: int, name: str, args: str, call_id: str | None = None) -> dict[str, Any]:
    return {"id": call_id or f"functions.{name}:{idx}", "type": "function",
            "function": {"name": name, "arguments": args}}


def kinds(result: ParseResult) -> list[str]:
    return [e.kind for e in result.errors]


def test_reasoning_then_content() -> None:
    r = parse_output("Think hard.</think>The answer is 4.<|im_end|>", thinking=True)
    assert (r.reasoning_content, r.content, r.tool_calls, r.errors) == (
        "Think hard.", "The answer is 4.", [], [])


def test_instant_mode_is_all_content() -> None:
    r = parse_output("Hello there.", thinking=False)
    assert (r.reasoning_content, r.content, r.errors) == (None, "Hello there.", [])


def test_model_repeating_the_prompt_think_tag_is_tolerated() -> None:
    r = parse_output("<think>hmm</think>ok", thinking=True)
    assert (r.reasoning_content, r.content, r.errors) == ("hmm", "ok", [])


def test_two_tool_calls_with_content_and_whitespace() -> None:
    text = (f"Plan.</think>Let me check.{SB}\n{CB} functions.get_weather:0 {AB} "
            f'{{"city": "Paris"}}\n{CE}\n{CB}functions.search:1{AB}{{"q":"x"}}{CE}{SE}<|im_end|>')
    r = parse_output(text, thinking=True)
    assert r.reasoning_content == "Plan."
    assert r.content == "Let me check."
    assert r.tool_calls == [tc(0, "get_weather", '{"city": "Paris"}'), tc(1, "search", '{"q":"x"}')]
    assert r.errors == []
    assert r.to_message() == {"role": "assistant", "content": "Let me check.",
                              "reasoning_content": "Plan.", "tool_calls": r.tool_calls}
    assert r.to_message(reasoning_key="reasoning")["reasoning"] == "Plan."
    assert Delta(reasoning_content="x").to_openai("reasoning") == {"reasoning": "x"}


def test_reasoning_ends_at_the_section_begin() -> None:
    r = parse_output(f"I will call it.{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=True)
    assert (r.reasoning_content, r.content) == ("I will call it.", None)
    assert r.tool_calls == [tc(0, "f", "{}")]


def test_alternative_section_spelling() -> None:
    text = (f"<|tool_call_section_begin|>{CB}functions.f:0{AB}{{\"a\":1}}{CE}"
            "<|tool_call_section_end|>")
    r = parse_output(text, thinking=False)
    assert r.tool_calls == [tc(0, "f", '{"a":1}')] and r.errors == []


def test_forced_tool_call_without_reasoning_or_content() -> None:
    r = parse_output(f"</think>{SB}{CB}functions.f:7{AB}{{}}{CE}{SE}", thinking=True)
    assert (r.reasoning_content, r.content, r.tool_calls) == (None, None, [tc(7, "f", "{}")])


def test_markers_inside_json_strings_are_argument_text() -> None:
    args = f'{{"code": "print(\\"{CE}{SE}<|im_end|>\\")", "n": 1}}'
    r = parse_output(f"{SB}{CB}functions.run:0{AB}{args}{CE}{SE}", thinking=False)
    assert r.tool_calls == [tc(0, "run", args)] and r.errors == []


def test_text_after_the_section_is_content() -> None:
    r = parse_output(f"a{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}b", thinking=False)
    assert r.content == "ab"


def test_repeated_sections_are_both_parsed() -> None:
    one = f"{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}"
    two = f"{SB}{CB}functions.g:1{AB}{{}}{CE}{SE}"
    assert parse_output(one + two, thinking=False).tool_calls == [tc(0, "f", "{}"),
                                                                  tc(1, "g", "{}")]


# ---- malformed output ------------------------------------------------------------------------


def test_invalid_json_arguments_withdraw_the_call() -> None:
    text = f"{SB}{CB}functions.f:0{AB}{{oops{CE}{CB}functions.g:1{AB}[1]{CE}{SE}"
    r = parse_output(text, thinking=False)
    assert r.tool_calls == []
    assert kinds(r) == ["invalid_arguments", "invalid_arguments"]
    assert r.errors[0].raw == f"{CB}functions.f:0{AB}{{oops{CE}"
    assert r.errors[0].tool_call_index == 0 and r.errors[1].tool_call_index == 1
    assert "JSON object" in r.errors[1].message


def test_bad_id_returns_the_call_as_content() -> None:
    raw = f"{CB}get_weather{AB}{{}}{CE}"
    r = parse_output(f"{SB}{raw}{CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=False)
    assert r.content == raw
    assert r.tool_calls == [tc(0, "f", "{}")]
    assert kinds(r) == ["invalid_tool_call_id"] and r.errors[0].position == len(SB)


def test_call_without_argument_marker_is_malformed() -> None:
    r = parse_output(f"{SB}{CB}functions.f:0{CE}{SE}", thinking=False)
    assert r.content == f"{CB}functions.f:0{CE}"
    assert kinds(r) == ["malformed_tool_call"]


def test_unterminated_call_and_section() -> None:
    r = parse_output(f"x{SB}{CB}functions.f:0{AB}{{\"a\": 1", thinking=False)
    assert r.content == "x" and r.tool_calls == []
    assert kinds(r) == ["unterminated_tool_call", "unterminated_tool_section"]
    r = parse_output(f"{SB}{CB}functions.f:0{AB}{{}}{CE}", thinking=False)
    assert r.tool_calls == [tc(0, "f", "{}")]
    assert kinds(r) == ["unterminated_tool_section"]


def test_call_interrupted_by_a_new_call() -> None:
    r = parse_output(f"{SB}{CB}functions.f:0{AB}{{\"a\":1}}{CB}functions.g:1{AB}{{}}{CE}{SE}",
                     thinking=False)
    assert r.tool_calls == [tc(1, "g", "{}")]
    assert kinds(r) == ["unterminated_tool_call"] and r.errors[0].tool_call_index == 0


def test_unterminated_reasoning() -> None:
    r = parse_output("still thinking", thinking=True)
    assert (r.reasoning_content, r.content, kinds(r)) == (
        "still thinking", None, ["unterminated_reasoning"])


def test_nested_and_repeated_markers_stay_as_text() -> None:
    r = parse_output("a</think>b</think>c<think>d", thinking=True)
    assert (r.reasoning_content, r.content) == ("a", "b</think>c<think>d")
    assert kinds(r) == ["unexpected_marker", "unexpected_marker"]
    r = parse_output(f"{SB}{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=False)
    assert r.content == SB and r.tool_calls == [tc(0, "f", "{}")]
    assert kinds(r) == ["unexpected_marker"]


def test_stray_markers_and_text() -> None:
    r = parse_output(f"hi{CE}{SB} junk {CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=False)
    assert r.content == f"hi{CE} junk "
    assert kinds(r) == ["unexpected_marker", "unexpected_text"]


def test_tools_disabled_keeps_markers_as_text() -> None:
    text = f"{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}"
    r = parse_output(text, thinking=False, tools=False)
    assert r.content == text and r.tool_calls == []
    assert kinds(r)[0] == "tools_disabled"


def test_text_after_im_end_is_dropped_with_an_error() -> None:
    r = parse_output("done<|im_end|>extra", thinking=False)
    assert r.content == "done" and kinds(r) == ["text_after_end"]
    assert r.errors[0].raw == "extra" and r.errors[0].position == len("done<|im_end|>")


def test_cut_off_marker_at_the_end_is_text() -> None:
    r = parse_output("answer <|tool_ca", thinking=False)
    assert r.content == "answer <|tool_ca" and r.errors == []


@pytest.mark.parametrize(("raw", "expected"), [
    ("functions.get_weather:0", ("functions.get_weather:0", "get_weather")),
    ("  functions.a.b:12 ", ("functions.a.b:12", "a.b")),
    ("search:3", ("search:3", "search")),
    ("get_weather", None),
    ("functions.:0", None),
    ("functions.f:x", None),
    ("functions.f g:0", None),
])
def test_tool_call_ids(raw: str, expected: tuple[str, str] | None) -> None:
    assert parse_tool_call_id(raw) == expected


# ---- streaming -------------------------------------------------------------------------------


def test_deltas_stream_like_openai() -> None:
    parser = OutputParser(thinking=True)
    deltas: list[Delta] = []
    for piece in ["Hm", "m.</th", "ink>Ok", SB, CB, "functions.f:0", AB, '{"a"', ": 1}",
                  CE, SE]:
        deltas += parser.feed(piece)
    result = parser.finish()
    assert deltas == [
        Delta(reasoning_content="Hm"), Delta(reasoning_content="m."), Delta(content="Ok"),
        Delta(tool_call=ToolCallDelta(0, "functions.f:0", "f")),
        Delta(tool_call=ToolCallDelta(0, arguments='{"a"')),
        Delta(tool_call=ToolCallDelta(0, arguments=": 1}")),
    ]
    assert [d.to_openai() for d in deltas[3:5]] == [
        {"tool_calls": [{"index": 0, "id": "functions.f:0", "type": "function",
                         "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]},
    ]
    assert result.tool_calls == [tc(0, "f", '{"a": 1}')]
    assert parser.final_deltas() == []


def test_error_delta_is_emitted_when_a_call_fails_validation() -> None:
    parser = OutputParser(thinking=False)
    parser.feed(f"{SB}{CB}functions.f:0{AB}nope")
    deltas = parser.feed(CE)
    assert len(deltas) == 1 and deltas[0].error is not None
    assert deltas[0].error.kind == "invalid_arguments" and deltas[0].to_openai() is None


def test_finish_is_idempotent_and_feed_after_finish_is_an_error() -> None:
    parser = OutputParser(thinking=False)
    parser.feed("x")
    assert parser.finish() is parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("y")
