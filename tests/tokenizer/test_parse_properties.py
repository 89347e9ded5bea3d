"""Property tests over random token/marker soups: chunking never changes the parse, the result is
the fold of the deltas, nothing raises, and text outside tool calls is never lost."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from openk2.tokenizer import default_tokenizer
from openk2.tokenizer.parse import Delta, OutputParser, fold_deltas, parse_output

MARKERS = ["<think>", "</think>", "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>",
           "<|tool_call_section_begin|>", "<|tool_call_section_end|>", "<|tool_call_begin|>",
           "<|tool_call_argument_begin|>", "<|tool_call_end|>", "<|im_end|>"]
PIECES = [*MARKERS, "functions.get_weather:0", "functions.f:12", "bad id", '{"a": 1}', "{", "}",
          '"', "\\", ":", ",", " ", "\n", "[1]", "<|tool_c", "<thi", "<", "|>", "你好", "x"]
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


def run_chunked(text: str, cuts: list[int], thinking: bool) -> tuple[list[Delta], object]:
    parser = OutputParser(thinking=thinking)
    deltas: list[Delta] = []
    points = sorted({min(c, len(text)) for c in cuts})
    start = 0
    for point in [*points, len(text)]:
        deltas += parser.feed(text[start:point])
        start = point
    result = parser.finish()
    return deltas + parser.final_deltas(), result


@settings(max_examples=400, deadline=None)
@given(st.one_of(SOUP, STRUCTURED), st.lists(st.integers(0, 400), max_size=40), st.booleans())
def test_chunking_never_changes_the_parse(text: str, cuts: list[int], thinking: bool) -> None:
    whole_deltas, whole = run_chunked(text, [], thinking)
    chunk_deltas, chunked = run_chunked(text, cuts, thinking)
    char_deltas, by_char = run_chunked(text, list(range(len(text))), thinking)
    assert chunked == whole == by_char
    assert coalesce(chunk_deltas) == coalesce(whole_deltas) == coalesce(char_deltas)
    assert fold_deltas(chunk_deltas) == whole


@settings(max_examples=300, deadline=None)
@given(SOUP)
def test_text_without_tool_markers_is_never_lost(text: str) -> None:
    for marker in MARKERS[2:]:
        text = text.replace(marker, "")
    r = parse_output(text, thinking=False)
    assert (r.content or "") == text
    r = parse_output(text, thinking=True)
    rebuilt = (r.reasoning_content or "") + ("</think>" if "</think>" in text else "") + (
        r.content or "")
    assert rebuilt in (text, text.replace("<think>", "", 1))


@settings(max_examples=300, deadline=None)
@given(STRUCTURED)
def test_valid_calls_have_json_object_arguments_and_k2_ids(text: str) -> None:
    r = parse_output(text, thinking=False)
    for call in r.tool_calls:
        assert isinstance(json.loads(call["function"]["arguments"]), dict)
        assert call["id"].endswith(tuple(f":{i}" for i in range(100)))
    withdrawn = [e for e in r.errors if e.tool_call_index is not None]
    started = text.count("<|tool_call_argument_begin|>")
    assert len(r.tool_calls) + len(withdrawn) <= started


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
    assert [c["function"]["arguments"] for c in streamed.tool_calls] == [
        '{"city": "北京", "note": "<|tool_call_end|> inside"}', '{"city": "Paris"}']
    assert streamed.errors == []
    assert sum(1 for d in deltas if d.tool_call is not None and d.tool_call.id is None) > 2
