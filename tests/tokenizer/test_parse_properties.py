"""Property tests over random token/marker soups: chunking never changes the parse, the result is
the fold of the deltas, nothing raises, text without markers is never lost, and no marker string
(any K2 special token) ever reaches content or reasoning, streamed or not."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.parse import (
    MARKER_ROLES,
    DeclaredTool,
    Delta,
    OutputParser,
    ParseResult,
    contains_marker,
    fold_deltas,
    parse_output,
)

MARKERS = list(MARKER_ROLES)
TOOLS = st.sampled_from([True, False, (DeclaredTool("f", {"properties": {"a": {}, "k": {}}}),),
                         (DeclaredTool("f", {"properties": {"a": {}}}),
                          DeclaredTool("get_weather", {"properties": {"k": {}, "s": {}}}))])
PIECES = [*MARKERS, "functions.get_weather:0", "functions.f:12", "bad id", '{"a": 1}', "{", "}",
          '"', "\\", ":", ",", " ", "\n", "[1]", "<|tool_c", "<thi", "<", "|>", "你好", "x",
          "0", "call_x1", "<|tool_call_", "end|>", "<|im_", "[EO", "S]", "[", "all_begin|>"]
SOUP = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=30).map("".join)
# A soup that is mostly well-formed tool calls with noise around them.
CALL = st.builds(lambda i, a: f"<|tool_call_begin|>functions.f:{i}<|tool_call_argument_begin|>{a}"
                 "<|tool_call_end|>", st.integers(0, 9), st.sampled_from(['{}', '{"k": "v"}',
                                                                          '{"s": "<|im_end|>"}',
                                                                          "{bad", "[]"]))
STRUCTURED = st.lists(st.one_of(CALL, st.sampled_from(PIECES)), max_size=12).map("".join)


def coalesce(deltas: list[Delta]) -> list[tuple[str, object]]:
    """Deltas with neighbouring text/argument fragments joined: chunking-independent form."""
    out: list[tuple[str, object]] = []
    for d in deltas:
        if d.content is not None:
            item: tuple[str, object] = ("content", d.content)
        elif d.reasoning_content is not None:
            item = ("reasoning", d.reasoning_content)
        elif d.tool_call is not None and d.tool_call.id is None:
            item = (f"args{d.tool_call.index}", d.tool_call.arguments)
        else:
            out.append(("event", d))
            continue
        if out and out[-1][0] == item[0]:
            out[-1] = (item[0], str(out[-1][1]) + str(item[1]))
        else:
            out.append(item)
    return out


def run_chunked(text: str, cuts: list[int], thinking: bool,
                tools: object = True) -> tuple[list[Delta], ParseResult]:
    parser = OutputParser(thinking=thinking, tools=tools)  # type: ignore[arg-type]
    deltas: list[Delta] = []
    points = sorted({min(c, len(text)) for c in cuts})
    start = 0
    for point in [*points, len(text)]:
        deltas += parser.feed(text[start:point])
        start = point
    result = parser.finish()
    return deltas + parser.final_deltas(), result


@settings(max_examples=400, deadline=None)
@given(st.one_of(SOUP, STRUCTURED), st.lists(st.integers(0, 400), max_size=40), st.booleans(),
       TOOLS)
def test_chunking_never_changes_the_parse(text: str, cuts: list[int], thinking: bool,
                                          tools: object) -> None:
    whole_deltas, whole = run_chunked(text, [], thinking, tools)
    chunk_deltas, chunked = run_chunked(text, cuts, thinking, tools)
    char_deltas, by_char = run_chunked(text, list(range(len(text))), thinking, tools)
    assert chunked == whole == by_char
    assert coalesce(chunk_deltas) == coalesce(whole_deltas) == coalesce(char_deltas)
    assert fold_deltas(chunk_deltas) == whole


@settings(max_examples=400, deadline=None)
@given(st.one_of(SOUP, STRUCTURED), st.lists(st.integers(0, 400), max_size=40), st.booleans(),
       TOOLS)
def test_no_marker_ever_reaches_content_or_reasoning(text: str, cuts: list[int], thinking: bool,
                                                     tools: object) -> None:
    deltas, result = run_chunked(text, cuts, thinking, tools)
    for delta in deltas:
        assert not contains_marker(delta.content or delta.reasoning_content or "")
    assert not contains_marker(result.content or "")
    assert not contains_marker(result.reasoning_content or "")


def remove_markers(text: str) -> str:
    while contains_marker(text):
        for marker in MARKERS:
            text = text.replace(marker, "")
    return text


@settings(max_examples=300, deadline=None)
@given(SOUP.map(remove_markers), TOOLS)
def test_text_without_markers_is_never_lost(text: str, tools: object) -> None:
    r = parse_output(text, thinking=False, tools=tools)  # type: ignore[arg-type]
    assert ((r.content or ""), r.errors) == (text, [])
    r = parse_output(text, thinking=True, tools=tools)  # type: ignore[arg-type]
    assert (r.reasoning_content or "") == text and r.content is None


@settings(max_examples=300, deadline=None)
@given(STRUCTURED)
def test_clean_calls_have_json_object_arguments_and_k2_ids(text: str) -> None:
    r = parse_output(text, thinking=False)
    for call in r.tool_calls:
        if not call.malformed:
            assert isinstance(json.loads(call.arguments), dict)
        assert call.id == f"functions.{call.name}:{call.id.rsplit(':', 1)[1]}" and call.name
    assert [c.index for c in r.tool_calls] == list(range(len(r.tool_calls)))
    assert len(r.tool_calls) <= text.count("<|tool_call_argument_begin|>")


def test_token_stream_through_the_tokenizer_matches_one_shot() -> None:
    """Encode a realistic generation, detokenize it token by token, and parse as it streams."""
    tok = default_tokenizer()
    text = ('Let me look.</think>Checking two cities.<|tool_calls_section_begin|>'
            '<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>'
            '{"city": "北京", "note": "<|tool_call_end|> inside"}<|tool_call_end|>'
            '<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>'
            '{"city": "Paris"}<|tool_call_end|><|tool_calls_section_end|>')
    decoder = tok.incremental_decoder()
    parser = OutputParser(thinking=True)
    deltas: list[Delta] = []
    for token_id in tok.encode(text):
        deltas += parser.feed(decoder.push(token_id))
    deltas += parser.feed(decoder.flush())
    streamed = parser.finish()
    assert streamed == parse_output(text, thinking=True)
    assert [c.arguments for c in streamed.tool_calls] == [
        '{"city": "北京", "note": "<|tool_call_end|> inside"}', '{"city": "Paris"}']
    assert streamed.errors == []
    assert sum(1 for d in deltas if d.tool_call is not None and d.tool_call.id is None) > 2
