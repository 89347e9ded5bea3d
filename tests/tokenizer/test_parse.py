"""Golden parses of K2 output: reasoning, content, tool calls and every malformed case."""

from typing import Any

import pytest

from openk2.tokenizer.parse import (
    CallName,
    DeclaredTool,
    Delta,
    OutputParser,
    ParseResult,
    ToolCallDelta,
    ToolCatalog,
    call_id,
    parse_output,
)

SB, SE = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CB, AB, CE = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"


def tc(idx: int, name: str, args: str, call_id: str | None = None) -> dict[str, Any]:
    return {"id": call_id or f"functions.{name}:{idx}", "type": "function",
            "function": {"name": name, "arguments": args}}


def kinds(result: ParseResult) -> list[str]:
    return [e.kind for e in result.errors]


def calls(result: ParseResult) -> list[dict[str, Any]]:
    return result.openai_tool_calls()


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
    assert calls(r) == [tc(0, "get_weather", '{"city": "Paris"}'), tc(1, "search", '{"q":"x"}')]
    assert r.errors == []
    assert r.to_message() == {"role": "assistant", "content": "Let me check.",
                              "reasoning_content": "Plan.", "tool_calls": calls(r)}
    assert r.to_message(reasoning_key="reasoning")["reasoning"] == "Plan."
    assert Delta(reasoning_content="x").to_openai("reasoning") == {"reasoning": "x"}


def test_reasoning_ends_at_the_section_begin() -> None:
    r = parse_output(f"I will call it.{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=True)
    assert (r.reasoning_content, r.content) == ("I will call it.", None)
    assert calls(r) == [tc(0, "f", "{}")]


def test_alternative_section_spelling() -> None:
    text = (f"<|tool_call_section_begin|>{CB}functions.f:0{AB}{{\"a\":1}}{CE}"
            "<|tool_call_section_end|>")
    r = parse_output(text, thinking=False)
    assert calls(r) == [tc(0, "f", '{"a":1}')] and r.errors == []


def test_forced_tool_call_without_reasoning_or_content() -> None:
    r = parse_output(f"</think>{SB}{CB}functions.f:7{AB}{{}}{CE}{SE}", thinking=True)
    assert (r.reasoning_content, r.content, calls(r)) == (None, None, [tc(7, "f", "{}")])


def test_markers_inside_json_strings_are_argument_text() -> None:
    args = f'{{"code": "print(\\"{CE}{SE}<|im_end|>\\")", "n": 1}}'
    r = parse_output(f"{SB}{CB}functions.run:0{AB}{args}{CE}{SE}", thinking=False)
    assert calls(r) == [tc(0, "run", args)] and r.errors == []


def test_text_after_the_section_is_content() -> None:
    r = parse_output(f"a{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}b", thinking=False)
    assert r.content == "ab"


def test_repeated_sections_are_both_parsed() -> None:
    one = f"{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}"
    two = f"{SB}{CB}functions.g:1{AB}{{}}{CE}{SE}"
    assert calls(parse_output(one + two, thinking=False)) == [tc(0, "f", "{}"), tc(1, "g", "{}")]


# ---- malformed output ------------------------------------------------------------------------


def test_invalid_json_arguments_mark_the_call_and_keep_the_raw_text() -> None:
    text = f"{SB}{CB}functions.f:0{AB}{{oops{CE}{CB}functions.g:1{AB}[1]{CE}{SE}"
    r = parse_output(text, thinking=False)
    assert calls(r) == [tc(0, "f", "{oops"), tc(1, "g", "[1]")]
    assert [c.error.kind for c in r.tool_calls if c.error] == ["invalid_arguments"] * 2
    assert kinds(r) == ["invalid_arguments", "invalid_arguments"] and r.content is None
    assert r.errors[0].raw == f"{CB}functions.f:0{AB}{{oops{CE}"
    assert "JSON object" in r.errors[1].message
    assert r.to_message(include_malformed=False) == {"role": "assistant", "content": None}


def test_call_without_argument_marker_is_dropped_without_markup() -> None:
    r = parse_output(f"ok{SB}{CB}functions.f:0{CE}{SE}", thinking=False)
    assert (r.content, r.tool_calls, kinds(r)) == ("ok", [], ["malformed_tool_call"])
    assert r.errors[0].raw == f"{CB}functions.f:0{CE}"


def test_output_ending_inside_a_call_keeps_the_partial_call_marked() -> None:
    r = parse_output(f"x{SB}{CB}functions.f:0{AB}{{\"a\": 1", thinking=False)
    assert r.content == "x" and calls(r) == [tc(0, "f", '{"a": 1')]
    assert kinds(r) == ["unterminated_tool_call", "unterminated_tool_section"]
    assert r.tool_calls[0].malformed
    r = parse_output(f"{SB}{CB}functions.f:0{AB}{{}}{CE}", thinking=False)
    assert calls(r) == [tc(0, "f", "{}")] and not r.tool_calls[0].malformed
    assert kinds(r) == ["unterminated_tool_section"]
    r = parse_output(f"x{SB}{CB}functions.f", thinking=False)
    assert (r.content, r.tool_calls) == ("x", [])
    assert kinds(r) == ["malformed_tool_call", "unterminated_tool_section"]


def test_call_interrupted_by_a_new_call() -> None:
    r = parse_output(f"{SB}{CB}functions.f:0{AB}{{\"a\":1}}{CB}functions.g:1{AB}{{}}{CE}{SE}",
                     thinking=False)
    assert calls(r) == [tc(0, "f", '{"a":1}'), tc(1, "g", "{}")]
    assert kinds(r) == ["unterminated_tool_call"] and r.errors[0].tool_call_index == 0


def test_unterminated_reasoning() -> None:
    r = parse_output("still thinking", thinking=True)
    assert (r.reasoning_content, r.content, kinds(r)) == (
        "still thinking", None, ["unterminated_reasoning"])


def test_misplaced_markers_are_removed() -> None:
    r = parse_output("a</think>b</think>c<think>d", thinking=True)
    assert (r.reasoning_content, r.content) == ("a", "bcd")
    assert kinds(r) == ["unexpected_marker", "unexpected_marker"]
    r = parse_output(f"{SB}{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}", thinking=False)
    assert r.content is None and calls(r) == [tc(0, "f", "{}")]
    assert kinds(r) == ["unexpected_marker"]


def test_other_special_tokens_never_reach_the_user() -> None:
    r = parse_output("a<|im_user|>b[EOS]c<|media_pad|>d</think>", thinking=True)
    assert (r.reasoning_content, r.content) == ("abcd", None)


def test_text_joined_around_a_removed_marker_cannot_form_one() -> None:
    r = parse_output(f"x<|tool_call_{AB}end|>y", thinking=False)
    assert r.content == "xy"
    r = parse_output("t<|im_</think>en<think>d|>u", thinking=True)
    assert r.reasoning_content == "t<|im_" and r.content == "end|>u"


def test_stray_markers_and_text_inside_the_section() -> None:
    r = parse_output(f"hi{CE}{SB} junk {CB}functions.f:0{AB}{{}}{CE} more {SE}", thinking=False)
    assert r.content == "hi" and calls(r) == [tc(0, "f", "{}")]
    assert kinds(r) == ["unexpected_marker", "unexpected_text", "unexpected_text"]
    assert r.errors[1].raw == " junk "


def test_unclosed_string_cannot_swallow_the_rest_of_the_reply() -> None:
    text = f'{SB}{CB}functions.f:0{AB}{{"p": "a.py}}{CE}{CB}functions.g:1{AB}{{}}{CE}{SE}after'
    r = parse_output(text, thinking=False)
    assert calls(r) == [tc(0, "f", '{"p": "a.py}'), tc(1, "g", "{}")]
    assert r.content == "after" and kinds(r) == ["invalid_arguments"]
    closed = f'{SB}{CB}functions.f:0{AB}{{"p": "{CE}"}}{CE}{SE}'
    assert calls(parse_output(closed, thinking=False)) == [tc(0, "f", f'{{"p": "{CE}"}}')]


def test_call_without_call_begin_is_recovered() -> None:
    r = parse_output(f"{SB}\nfunctions.f:0{AB}{{}}{CE}{SE}", thinking=False)
    assert calls(r) == [tc(0, "f", "{}")] and kinds(r) == ["missing_call_begin"]


def test_instant_mode_reply_that_thinks_anyway() -> None:
    r = parse_output("<think>hmm</think>answer", thinking=False)
    assert (r.reasoning_content, r.content, r.errors) == ("hmm", "answer", [])


def test_tools_disabled_drops_calls_without_markup() -> None:
    text = f"ok{SB}{CB}functions.f:0{AB}{{}}{CE}{SE}"
    r = parse_output(text, thinking=False, tools=False)
    assert (r.content, r.tool_calls, kinds(r)) == ("ok", [], ["tools_disabled"])
    assert r.errors[0].raw == f"{CB}functions.f:0{AB}{{}}{CE}"
    assert parse_output(text, thinking=False, tools=[]).tool_calls == []


def test_text_after_im_end_is_dropped_with_an_error() -> None:
    r = parse_output("done<|im_end|>extra", thinking=False)
    assert r.content == "done" and kinds(r) == ["text_after_end"]
    assert r.errors[0].raw == "extra" and r.errors[0].position == len("done<|im_end|>")


def test_cut_off_marker_at_the_end_is_text() -> None:
    r = parse_output("answer <|tool_ca", thinking=False)
    assert r.content == "answer <|tool_ca" and r.errors == []


# ---- names from declared tools ---------------------------------------------------------------

WEATHER = DeclaredTool("get_weather", {"properties": {"city": {}, "unit": {}},
                                       "required": ["city"]})
SEARCH = DeclaredTool("search", {"properties": {"q": {}}})
CATALOG = ToolCatalog((WEATHER, SEARCH))


@pytest.mark.parametrize(("raw", "expected"), [
    ("functions.get_weather:0", CallName("get_weather", True, 0)),
    ("  get_weather:3 ", CallName("get_weather", True, 3)),
    ("functions.get_weather", CallName("get_weather", True, None)),
    ("get_weather", CallName("get_weather", True, None)),
    ("functions.tools.search:2", CallName("search", True, 2)),
    ("functions.weather:0", CallName("weather", False, 0)),
    ("0", CallName(None, False, 0)),
    ("call_abc123", CallName(None, False, None)),
    ("", CallName(None, False, None)),
    ("functions.f g:0", CallName(None, False, 0)),
])
def test_names_resolve_against_declared_tools(raw: str, expected: CallName) -> None:
    assert CATALOG.resolve(raw) == expected


def test_single_declared_tool_takes_unnamed_ids_and_open_catalog_takes_any_name() -> None:
    single = ToolCatalog((SEARCH,))
    assert single.resolve("call_1").name == "search" and single.resolve("7").index == 7
    assert single.resolve("functions.other:0") == CallName("other", False, 0)
    open_ = ToolCatalog.open()
    assert open_.resolve("functions.a.b:1") == CallName("a.b", True, 1)
    assert open_.resolve("0").name is None


def test_inference_from_argument_keys() -> None:
    assert CATALOG.infer({"city": "x"}) == "get_weather"
    assert CATALOG.infer({"q": "x"}) == "search"
    assert CATALOG.infer({}) == "search"  # get_weather requires `city`
    twins = ToolCatalog((SEARCH, DeclaredTool("find", {"properties": {"q": {}}})))
    assert twins.infer({"q": "x"}) is None
    assert CATALOG.infer({"other": 1}) is None and CATALOG.infer([1]) is None


def test_catalog_from_openai_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert ToolCatalog.from_openai(tools).tools == (DeclaredTool("f", {"type": "object"}),)


def test_call_ids_are_returned_in_k2_form() -> None:
    assert call_id(" functions.f:3 ", "f", 0) == "functions.f:3"
    assert call_id("f:3", "f", 0) == "functions.f:3"
    assert call_id("call_abc", "f", 2) == "functions.f:2"
    assert call_id("functions.g:1", "f", 0) == "functions.f:1"


def test_unknown_tool_is_returned_marked() -> None:
    r = parse_output(f"{SB}{CB}functions.weather:0{AB}{{}}{CE}{SE}", thinking=False,
                     tools=CATALOG)
    assert calls(r) == [tc(0, "weather", "{}")] and kinds(r) == ["unknown_tool"]
    assert r.tool_calls[0].error is not None and r.tool_calls[0].error.kind == "unknown_tool"


def test_unnamed_call_is_attributed_at_its_end() -> None:
    parser = OutputParser(thinking=False, tools=CATALOG)
    assert parser.feed(f"{SB}{CB}call_9{AB}{{\"q\": ") == []
    deltas = parser.feed(f'"cats"}}{CE}{CB}1{AB}{{"n": 1}}{CE}{SE}')
    assert deltas[:2] == [Delta(tool_call=ToolCallDelta(0, "functions.search:0", "search")),
                          Delta(tool_call=ToolCallDelta(0, arguments='{"q": "cats"}'))]
    r = parser.finish()
    assert calls(r) == [tc(0, "search", '{"q": "cats"}')]
    assert kinds(r) == ["unresolved_tool_call"] and r.errors[0].raw.startswith(f"{CB}1{AB}")


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
    assert calls(result) == [tc(0, "f", '{"a": 1}')]
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
