"""Incremental parser for K2 generations: reasoning, content and tool calls as OpenAI deltas.

Grammar of one assistant turn (after the prompt's `<think>` in thinking mode):

    reasoning  </think>  content  [SECTION_BEGIN (CALL)* SECTION_END]  [<|im_end|>]
    CALL = <|tool_call_begin|> ID <|tool_call_argument_begin|> JSON <|tool_call_end|>

Reasoning also ends at SECTION_BEGIN (the model may call tools straight from its reasoning).
Both `tool_calls_section` and `tool_call_section` spellings are accepted. IDs look like
`functions.NAME:IDX`; NAME is what follows `functions.`. Inside a call's arguments, markers
that occur within a JSON string are argument text, so arguments may mention marker strings.

Malformed output never raises. Misplaced markers stay in the text as literals; a bad id or an
interrupted call is returned as content; arguments that are not a JSON object withdraw the call.
Each case adds a `ParseError` (kinds: unexpected_marker, unexpected_text, tools_disabled,
invalid_tool_call_id, malformed_tool_call, invalid_arguments, unterminated_tool_call,
unterminated_tool_section, unterminated_reasoning, text_after_end). Every decision depends
only on the text, never on how it was chunked, so feeding token by token or all at once gives
the same result.
"""

from __future__ import annotations

import json

from openk2.tokenizer.parse.calls import CallState, Held, parse_tool_call_id
from openk2.tokenizer.parse.markers import Event, MarkerScanner
from openk2.tokenizer.parse.types import Delta, ParseError, ParseResult, ToolCallDelta, fold_deltas

REASONING, CONTENT, SECTION, CALL_ID, CALL_ARGS, RAW_CALL, DONE = (
    "reasoning", "content", "section", "call_id", "call_args", "raw_call", "done")


class OutputParser:
    """Feed generated text with `feed()`, get OpenAI-style deltas; `finish()` gives the result.

    `thinking`: the prompt ended with `<think>`, so generation starts inside the reasoning.
    `tools`: the request declared tools; without them tool markers are text plus an error.
    """

    def __init__(self, *, thinking: bool, tools: bool = True) -> None:
        self.thinking = thinking
        self.tools = tools
        self._scanner = MarkerScanner()
        self._state = REASONING if thinking else CONTENT
        self._deltas: list[Delta] = []
        self._out: list[Delta] = []
        self._reasoning_chars = 0
        self._dropped_think_open = False
        self._section_start = 0
        self._stray = Held()  # text between calls inside a section
        self._trailing = Held()  # text after <|im_end|>
        self._call = CallState()
        self._next_index = 0
        self._finished: ParseResult | None = None

    # ---- public API ------------------------------------------------------------------------

    def feed(self, text: str) -> list[Delta]:
        """Parse more generated text; return the deltas it completes."""
        if self._finished is not None:
            raise RuntimeError("OutputParser.feed() called after finish()")
        self._out = []
        for event in self._scanner.feed(text):
            self._dispatch(event)
        return self._out

    def finish(self) -> ParseResult:
        """End of generation: flush, report unterminated structures, return the result."""
        if self._finished is None:
            self._out = []
            for event in self._scanner.finish():
                self._dispatch(event)
            self._close()
            self._finished = fold_deltas(self._deltas)
        return self._finished

    def final_deltas(self) -> list[Delta]:
        """Deltas produced by the last `finish()` call (flushed text and end-of-stream errors)."""
        return self._out

    @property
    def deltas(self) -> list[Delta]:
        """Every delta produced so far, in order."""
        return list(self._deltas)

    # ---- emission --------------------------------------------------------------------------

    def _emit(self, delta: Delta) -> None:
        self._deltas.append(delta)
        self._out.append(delta)

    def _text(self, text: str) -> None:
        """Plain text on the current channel (reasoning while reasoning, else content)."""
        if not text:
            return
        if self._state == REASONING:
            self._reasoning_chars += len(text)
            self._emit(Delta(reasoning_content=text))
        else:
            self._emit(Delta(content=text))

    def _error(self, kind: str, message: str, position: int, raw: str = "",
               index: int | None = None) -> None:
        self._emit(Delta(error=ParseError(kind, message, position, raw, index)))

    def _literal(self, event: Event, kind: str = "unexpected_marker") -> None:
        """Keep a misplaced marker as text on the current channel and report it."""
        self._text(event.text)
        self._error(kind, f"{event.text} is not allowed here; kept as text", event.position,
                    event.text)

    # ---- dispatch --------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if event.role is None:
            _TEXT_HANDLERS[self._state](self, event)
        else:
            _MARKER_HANDLERS[self._state](self, event)

    def _on_text(self, event: Event) -> None:
        self._text(event.text)

    def _on_reasoning_marker(self, event: Event) -> None:
        if event.role == "think_open" and self._reasoning_chars == 0 and not \
                self._dropped_think_open:
            self._dropped_think_open = True  # the prompt's <think> repeated by the model
        elif event.role == "think_close":
            self._state = CONTENT
        elif event.role == "im_end":
            self._error("unterminated_reasoning", "reasoning ended without </think>",
                        event.position)
            self._state = DONE
        else:
            self._on_content_marker(event)

    def _on_content_marker(self, event: Event) -> None:
        if event.role == "section_begin" and self.tools:
            self._section_start = event.position
            self._state = SECTION
        elif event.role == "section_begin":
            self._literal(event, "tools_disabled")
        elif event.role == "im_end":
            self._state = DONE
        else:
            self._literal(event)

    # ---- tool-call section -----------------------------------------------------------------

    def _on_section_text(self, event: Event) -> None:
        self._stray.add(event)

    def _flush_stray(self) -> None:
        position, stray = self._stray.position, self._stray.take()
        if stray.strip():
            self._text(stray)
            self._error("unexpected_text", "text between tool calls; kept as content",
                        position, stray)

    def _on_section_marker(self, event: Event) -> None:
        self._flush_stray()
        if event.role == "call_begin":
            self._start_call(event)
        elif event.role == "section_end":
            self._state = CONTENT
        elif event.role == "im_end":
            self._unterminated_section()
            self._state = DONE
        else:
            self._literal(event)

    def _unterminated_section(self) -> None:
        self._error("unterminated_tool_section", "tool-call section was not closed",
                    self._section_start)

    def _start_call(self, event: Event) -> None:
        self._state = CALL_ID
        self._call = CallState(raw=event.text, position=event.position)

    def _on_call_id_text(self, event: Event) -> None:
        self._call.raw += event.text
        self._call.id_text += event.text

    def _on_call_id_marker(self, event: Event) -> None:
        if event.role == "argument_begin":
            self._begin_arguments(event)
        elif event.role == "call_end":
            self._abandon_call(event.text, "malformed_tool_call",
                               "tool call has no <|tool_call_argument_begin|>")
        else:
            self._abandon_call("", "malformed_tool_call", f"tool call interrupted by {event.text}")
            self._dispatch(event)

    def _abandon_call(self, extra: str, kind: str, message: str) -> None:
        """Return a call that never started streaming as content, with an error."""
        raw = self._call.raw + extra
        self._state = SECTION
        self._text(raw)
        self._error(kind, message, self._call.position, raw)

    def _begin_arguments(self, event: Event) -> None:
        self._call.raw += event.text
        parsed = parse_tool_call_id(self._call.id_text)
        if parsed is None:
            self._state = RAW_CALL
            return
        call_id, name = parsed
        self._call.index, self._next_index = self._next_index, self._next_index + 1
        self._state = CALL_ARGS
        self._emit(Delta(tool_call=ToolCallDelta(self._call.index, call_id, name)))

    def _on_raw_call_text(self, event: Event) -> None:
        self._call.raw += event.text

    def _on_raw_call_marker(self, event: Event) -> None:
        message = (f"invalid tool-call id {self._call.id_text.strip()!r} "
                   "(expected functions.NAME:IDX)")
        if event.role == "call_end":
            self._abandon_call(event.text, "invalid_tool_call_id", message)
        elif event.role in ("section_begin", "section_end", "call_begin", "im_end"):
            self._abandon_call("", "invalid_tool_call_id", message)
            self._dispatch(event)
        else:
            self._call.raw += event.text

    # ---- arguments -------------------------------------------------------------------------

    def _on_args_text(self, event: Event) -> None:
        self._call.raw += event.text
        fragment = self._call.args.add(event.text)
        if fragment:
            self._emit(Delta(tool_call=ToolCallDelta(self._call.index, arguments=fragment)))

    def _on_args_marker(self, event: Event) -> None:
        if self._call.args.in_string:  # a marker inside a JSON string is argument text
            self._on_args_text(event)
        elif event.role == "call_end":
            self._call.raw += event.text
            self._state = SECTION
            self._validate_arguments()
        else:
            self._drop_call("unterminated_tool_call", f"tool call interrupted by {event.text}")
            self._state = SECTION
            self._dispatch(event)

    def _validate_arguments(self) -> None:
        try:
            value = json.loads(self._call.args.text)
        except ValueError as e:
            self._drop_call("invalid_arguments", f"arguments are not valid JSON: {e}")
            return
        if not isinstance(value, dict):
            self._drop_call("invalid_arguments", "arguments must be a JSON object")

    def _drop_call(self, kind: str, message: str) -> None:
        self._error(kind, message, self._call.position, self._call.raw, self._call.index)

    # ---- end of stream ---------------------------------------------------------------------

    def _on_done(self, event: Event) -> None:
        self._trailing.add(event)

    def _close(self) -> None:
        state = self._state
        if state == REASONING and self.thinking:
            self._error("unterminated_reasoning", "output ended inside the reasoning", 0)
        elif state == SECTION:
            self._flush_stray()
        elif state == CALL_ID:
            self._abandon_call("", "malformed_tool_call", "output ended inside a tool call")
        elif state == CALL_ARGS:
            self._drop_call("unterminated_tool_call", "output ended inside tool-call arguments")
        elif state == RAW_CALL:
            self._abandon_call("", "invalid_tool_call_id", "output ended inside a tool call "
                               f"with invalid id {self._call.id_text.strip()!r}")
        elif state == DONE and self._trailing.text.strip():
            self._error("text_after_end", "text after <|im_end|> was dropped",
                        self._trailing.position, self._trailing.text)
        if state in (SECTION, CALL_ID, CALL_ARGS, RAW_CALL):
            self._unterminated_section()


_TEXT_HANDLERS = {
    REASONING: OutputParser._on_text,
    CONTENT: OutputParser._on_text,
    SECTION: OutputParser._on_section_text,
    CALL_ID: OutputParser._on_call_id_text,
    CALL_ARGS: OutputParser._on_args_text,
    RAW_CALL: OutputParser._on_raw_call_text,
    DONE: OutputParser._on_done,
}
_MARKER_HANDLERS = {
    REASONING: OutputParser._on_reasoning_marker,
    CONTENT: OutputParser._on_content_marker,
    SECTION: OutputParser._on_section_marker,
    CALL_ID: OutputParser._on_call_id_marker,
    CALL_ARGS: OutputParser._on_args_marker,
    RAW_CALL: OutputParser._on_raw_call_marker,
    DONE: OutputParser._on_done,
}


def parse_output(text: str, *, thinking: bool, tools: bool = True) -> ParseResult:
    """Parse a complete generation in one call."""
    parser = OutputParser(thinking=thinking, tools=tools)
    parser.feed(text)
    return parser.finish()
