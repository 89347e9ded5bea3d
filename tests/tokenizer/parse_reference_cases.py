"""K2 tool-call and reasoning cases derived from how vLLM and SGLang parse K2 output.

Written from our reading of their behaviour (facts only; no code or test text copied):

- vLLM `kimi_k2` tool parser: a call is `<|tool_call_begin|> ID <|tool_call_argument_begin|>
  ARGS <|tool_call_end|>` with ID = anything without "<" ending in `:digits`, surrounding
  whitespace ignored; ARGS is returned verbatim, never JSON-validated (invalid JSON is still a
  call); the name is the ID's text before ":" after its last "."; the ID itself is the call id;
  IDs without `:digits` are skipped; content is the text before the section (None if empty);
  text after the section and between the section begin and the first call is suppressed; a
  stream that ends inside the arguments still yields the call with its partial arguments;
  both `tool_calls_section` and `tool_call_section` spellings start a section. With declared
  tools, a bare-counter ID (`0`) is the only tool, or the one tool whose schema fits the
  argument keys; ambiguous or unparsable arguments drop the call.
- SGLang `KimiK2Detector`: ID = `[\\w.-]+:digits` with optional `functions.` prefix (dotted and
  hyphenated names kept whole); arguments must be braced but are not validated; normal text
  is the text before the section; stray tool markers in plain text are stripped. Its K2
  reasoning detector drops a leading `<think>` and ends the reasoning at a tool section even
  without `</think>`, so no tool marker is ever in the reasoning.

`deliberate` names where openk2 chooses otherwise, and why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from openk2.tokenizer.parse import DeclaredTool

SB, SE = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CB, AB, CE = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"

WEATHER = DeclaredTool("get_weather", {"type": "object", "properties": {
    "city": {"type": "string"}, "unit": {"type": "string"}}})
READ_FILE = DeclaredTool("read_file", {"type": "object", "properties": {"path": {}},
                                       "required": ["path"]})
BOOK_FLIGHT = DeclaredTool("book_flight", {"type": "object", "properties": {"city": {}}})

Call = tuple[str, str, bool]
"""(function name, arguments, malformed)."""


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    source: str
    chunks: tuple[str, ...]
    content: str | None
    calls: tuple[Call, ...] = ()
    thinking: bool = False
    tools: tuple[DeclaredTool, ...] | None = None
    """Declared tools; None: the parser accepts any name."""
    reasoning: str | None = None
    deliberate: str = ""

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def call(tool_id: str, args: str, space: str = " ") -> str:
    return f"{CB}{tool_id}{space}{AB}{args}{CE}"


def section(*calls: str) -> str:
    return SB + "".join(calls) + SE


def same_arguments(got: str, want: str) -> bool:
    try:
        return bool(json.loads(got) == json.loads(want))
    except ValueError:
        return got == want


def agrees(case: Case, content: str | None, reasoning: str | None,
           calls: Sequence[Call]) -> bool:
    """Whether a parser's outcome is the case's expected one."""
    if content != case.content or reasoning != case.reasoning or len(calls) != len(case.calls):
        return False
    return all(g[0] == w[0] and g[2] == w[2] and same_arguments(g[1], w[1])
               for g, w in zip(calls, case.calls, strict=True))


def _case(name: str, source: str, text: str | Sequence[str], content: str | None,
          *calls: Call, **kw: object) -> Case:
    chunks = (text,) if isinstance(text, str) else tuple(text)
    return Case(name, source, chunks, content, tuple(calls), **kw)  # type: ignore[arg-type]


CASES: tuple[Case, ...] = (
    _case("single_call", "vLLM", "I'll check. " + section(call(
        "functions.get_weather:0", '{"city": "Beijing"}')), "I'll check. ",
        ("get_weather", '{"city": "Beijing"}', False)),
    _case("parallel_calls", "vLLM", "Compare. " + section(
        call("functions.get_weather:0", '{"city": "Beijing"}'),
        call("functions.get_weather:1", '{"city": "Shanghai"}')), "Compare. ",
        ("get_weather", '{"city": "Beijing"}', False),
        ("get_weather", '{"city": "Shanghai"}', False)),
    _case("three_tools", "vLLM", "Tasks. " + section(
        call("functions.get_weather:0", '{"city": "NYC"}'),
        call("functions.get_news:1", '{"topic": "tech"}'),
        call("functions.send_email:2", '{"to": "a@b.c", "subject": "Daily"}')), "Tasks. ",
        ("get_weather", '{"city": "NYC"}', False), ("get_news", '{"topic": "tech"}', False),
        ("send_email", '{"to": "a@b.c", "subject": "Daily"}', False)),
    _case("angle_brackets_in_json", "vLLM", "HTML. " + section(call(
        "functions.process_html:0", '{"html": "<div>content</div>"}')), "HTML. ",
        ("process_html", '{"html": "<div>content</div>"}', False)),
    _case("multiline_json", "vLLM", "Formatted. " + section(call(
        "functions.process_data:0", '{\n  "name": "test",\n  "value": 123\n}')), "Formatted. ",
        ("process_data", '{"name": "test", "value": 123}', False)),
    _case("no_functions_prefix", "vLLM", "No prefix. " + section(call(
        "get_weather:0", '{"city": "Tokyo"}')), "No prefix. ",
        ("get_weather", '{"city": "Tokyo"}', False)),
    _case("empty_arguments", "vLLM", "Empty. " + section(call("functions.test:0", "{}")),
          "Empty. ", ("test", "{}", False)),
    _case("invalid_json_kept", "vLLM", "Help. " + section(
        call("functions.bad:0", '{"city": "Beijing"'),
        call("functions.good:1", '{"city": "Shanghai"}')), "Help. ",
        ("bad", '{"city": "Beijing"', True), ("good", '{"city": "Shanghai"}', False)),
    _case("id_without_index", "vLLM", "Help. " + section(
        call("functions.invalid.0", '{"city": "Beijing"}'),
        call("functions.valid:1", '{"city": "Shanghai"}')), "Help. ",
        ("invalid.0", '{"city": "Beijing"}', True), ("valid", '{"city": "Shanghai"}', False),
        tools=(DeclaredTool("valid"),),
        deliberate="vLLM skips the first call; the issue asks for it as a malformed call"),
    _case("bare_counter_single_tool", "vLLM", "Let me check. " + section(call(
        "0", '{"city": "Tokyo", "unit": "celsius"}')), "Let me check. ",
        ("get_weather", '{"city": "Tokyo", "unit": "celsius"}', False), tools=(WEATHER,)),
    _case("bare_counter_invalid_json", "vLLM", "Let me check. " + section(call(
        "0", '{"city": "Tokyo"')), "Let me check. ",
        ("get_weather", '{"city": "Tokyo"', True), tools=(WEATHER,)),
    _case("bare_counter_inferred", "vLLM", "Let me check. " + section(call(
        "0", '{"city": "Tokyo", "unit": "celsius"}')), "Let me check. ",
        ("get_weather", '{"city": "Tokyo", "unit": "celsius"}', False),
        tools=(READ_FILE, WEATHER)),
    _case("bare_counter_ambiguous", "vLLM", "Let me check. " + section(call(
        "0", '{"city": "Tokyo"}')), "Let me check. ", tools=(WEATHER, BOOK_FLIGHT)),
    _case("bare_counter_ambiguous_bad_json", "vLLM", "Let me check. " + section(call(
        "0", '{"city": "Tokyo"')), "Let me check. ", tools=(WEATHER, BOOK_FLIGHT)),
    _case("client_style_id", "issue 11", "Ok. " + section(call(
        "call_abc123", '{"path": "/a"}')), "Ok. ",
        ("read_file", '{"path": "/a"}', False), tools=(READ_FILE,)),
    _case("streamed_arguments", "vLLM", ["Help. ", SB, CB, "functions.get_weather:0 ", AB,
                                         '{"ci', 'ty": "Be', 'ijing"}', " ", CE, SE], "Help. ",
          ("get_weather", '{"city": "Beijing"}', False)),
    _case("noise_before_first_call", "vLLM", ["Reasoning. ", SB, " spurious noise ", CB,
                                              "functions.test:0 ", AB, '{"k": "v"} ', CE, SE],
          "Reasoning. ", ("test", '{"k": "v"}', False)),
    _case("empty_section", "vLLM", ["Reasoning. ", SB, SE], "Reasoning. "),
    _case("truncated_call", "vLLM", ["I'll check. ", SB, CB, "functions.get_weather:0 ", AB,
                                     '{"city": "Bei'], "I'll check. ",
          ("get_weather", '{"city": "Bei', True)),
    _case("content_after_section", "vLLM", ["Before. ", SB, CB, "functions.get_weather:0 ",
                                            AB, '{"city": "Tokyo"} ', CE, SE, " After tools."],
          "Before.  After tools.", ("get_weather", '{"city": "Tokyo"}', False),
          deliberate="vLLM and SGLang drop text after the section; openk2 keeps it"),
    _case("plain_text", "vLLM", ["This is just ", "regular text ", "without tools."],
          "This is just regular text without tools."),
    _case("content_and_call_in_one_chunk", "vLLM", "Hi! " + section(call(
        "functions.get_weather:0", '{"city": "Beijing"}')), "Hi! ",
        ("get_weather", '{"city": "Beijing"}', False)),
    _case("singular_section_spelling", "vLLM", "S. <|tool_call_section_begin|>" + call(
        "functions.f:0", '{"a": 1}') + "<|tool_call_section_end|>", "S. ",
        ("f", '{"a": 1}', False)),
    _case("hyphenated_name", "SGLang", section(call(
        "functions.mcp__portal__search-documents:0", '{"path": "/docs"}', space="")), None,
        ("mcp__portal__search-documents", '{"path": "/docs"}', False)),
    _case("dotted_name_declared", "SGLang", section(call(
        "functions.fs.read:0", '{"path": "/x"}', space="")), None,
        ("fs.read", '{"path": "/x"}', False), tools=(DeclaredTool("fs.read"),)),
    _case("stray_section_end_in_text", "SGLang", "normal text" + SE, "normal text"),
    _case("stray_argument_begin_in_text", "SGLang", "text" + AB + "more", "textmore"),
    _case("reasoning_then_call", "SGLang", "<think>I need to check the file.</think>" +
          section(call("functions.read_file:0", '{"path": "/test.py"}', space="")), None,
          ("read_file", '{"path": "/test.py"}', False), thinking=True,
          reasoning="I need to check the file."),
    _case("call_inside_unclosed_reasoning", "SGLang", "<think>Let me read this file..." +
          section(call("functions.read_file:0", '{"path": "/test.py"}', space="")), None,
          ("read_file", '{"path": "/test.py"}', False), thinking=True,
          reasoning="Let me read this file..."),
    _case("reasoning_streamed", "SGLang", ["<think>", "Analyzing the request...", "</think>",
                                           SB, CB, "functions.read_file:0", AB,
                                           '{"path": "/x"}', CE, SE], None,
          ("read_file", '{"path": "/x"}', False), thinking=True,
          reasoning="Analyzing the request..."),
    _case("text_between_calls", "issue 11", "A. " + SB + call("functions.f:0", "{}") +
          " and then " + call("functions.g:1", "{}") + SE, "A. ",
          ("f", "{}", False), ("g", "{}", False)),
    _case("call_without_section", "issue 11", "Sure." + call("functions.f:0", '{"a": 1}'),
          "Sure.", ("f", '{"a": 1}', False)),
    _case("marker_split_across_chunks", "issue 11", ["Ok <|tool_ca", "lls_section_be",
                                                     "gin|><|tool_call_begin|>functions.f:0",
                                                     "<|tool_call_argu", "ment_begin|>{}<|to",
                                                     "ol_call_end|><|tool_calls_section_end|>"],
          "Ok ", ("f", "{}", False)),
)
