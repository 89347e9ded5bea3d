"""Incremental parser for K2 generations: reasoning, content and tool calls as OpenAI deltas.

Grammar of one assistant turn (after the prompt's `<think>` in thinking mode):

    reasoning  </think>  content  [SECTION_BEGIN (CALL)* SECTION_END]  content  [<|im_end|>]
    CALL = <|tool_call_begin|> ID <|tool_call_argument_begin|> JSON <|tool_call_end|>

Both `tool_calls_section` and `tool_call_section` spellings are accepted. What real K2-family
output does beyond that, and what the parser makes of it:

- Reasoning also ends at SECTION_BEGIN or a bare `<|tool_call_begin|>`; content may open a call
  without SECTION_BEGIN; a `<think>` before any text in instant mode starts reasoning.
- IDs are resolved against the declared tools (`tools.py`): `functions.NAME:IDX`, `NAME:IDX`,
  bare counters and client-style ids. A call whose tool cannot be told is dropped with an error.
- Arguments that are not a JSON object keep their raw text and mark the call
  (`invalid_arguments`); a call cut off by a new call, the section end or the end of output
  keeps its partial arguments and is marked `unterminated_tool_call` (vLLM does the same).
  Markers inside a JSON string are argument text, so arguments may mention marker strings;
  if that string never closes (an unbalanced quote), the output is re-read from the first
  such marker on, so a stray quote cannot swallow the rest of the reply.
- Text inside the section but outside calls is dropped (`unexpected_text`), as vLLM and SGLang
  suppress it; text after SECTION_END is content (vLLM and SGLang drop it; it loses nothing).
  A call whose `<|tool_call_begin|>` is missing is recovered from the id text before
  `<|tool_call_argument_begin|>`.
- No marker string ever reaches `content` or `reasoning_content`: misplaced markers are
  stripped with an `unexpected_marker` error, and both channels pass a `MarkerFilter` so text
  joined around a stripped marker cannot form one. Without tools, calls are dropped
  (`tools_disabled`). Text after `<|im_end|>` is dropped (`text_after_end`).

Errors are `ParseError`s with the raw text; a malformed call is still returned, marked, and
the server decides what it becomes. Every decision depends only on the text, never on how it
was chunked, so feeding token by token or all at once gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable

from openk2.tokenizer.parse.calls import CallState, Held, json_object
from openk2.tokenizer.parse.markers import Event, MarkerFilter, MarkerScanner
from openk2.tokenizer.parse.tools import DeclaredTool, ToolCatalog, call_id
from openk2.tokenizer.parse.types import Delta, ParseError, ParseResult, ToolCallDelta, fold_deltas

REASONING, CONTENT, SECTION, CALL_ID, CALL_ARGS, DONE = (
    "reasoning", "content", "section", "call_id", "call_args", "done")
_INTERRUPTING = frozenset({"call_begin", "section_begin", "section_end", "im_end"})
_STRUCTURAL = _INTERRUPTING | {"call_end"}
ToolsArg = ToolCatalog | Iterable[DeclaredTool] | bool | None


class OutputParser:
    """Feed generated text with `feed()`, get OpenAI-style deltas; `finish()` gives the result.

    `thinking`: the prompt ended with `<think>`, so generation starts inside the reasoning.
    `tools`: the request's declared tools (a `ToolCatalog` or `DeclaredTool`s); `True` accepts
    any function name; `False`/`None`/empty: tools are off and calls are dropped.
    """

    def __init__(self, *, thinking: bool, tools: ToolsArg = True) -> None:
        self.thinking = thinking
        self.catalog = _catalog(tools)
        self._scanner = MarkerScanner()
        self._state = REASONING if thinking else CONTENT
        self._filters = {REASONING: MarkerFilter(), CONTENT: MarkerFilter()}
        self._deltas: list[Delta] = []
        self._out: list[Delta] = []
        self._spoken = False  # non-whitespace reasoning or content seen
        self._section_start = 0
        self._stray = Held()  # text inside the section, outside calls
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
            for channel, flt in self._filters.items():
                self._emit_text(channel, flt.finish())
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
        channel = REASONING if self._state == REASONING else CONTENT
        self._spoken = self._spoken or bool(text.strip())
        self._emit_text(channel, self._filters[channel].add(text))

    def _emit_text(self, channel: str, text: str) -> None:
        if text:
            self._emit(Delta(reasoning_content=text) if channel == REASONING else
                       Delta(content=text))

    def _error(self, kind: str, message: str, position: int, raw: str = "",
               index: int | None = None) -> None:
        self._emit(Delta(error=ParseError(kind, message, position, raw, index)))

    def _strip(self, event: Event) -> None:
        """Drop a misplaced marker and report it."""
        self._error("unexpected_marker", f"{event.text} is not allowed here; removed",
                    event.position, event.text)

    # ---- dispatch --------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if event.role is None:
            _TEXT_HANDLERS[self._state](self, event)
        else:
            _MARKER_HANDLERS[self._state](self, event)

    def _on_text(self, event: Event) -> None:
        self._text(event.text)

    def _on_reasoning_marker(self, event: Event) -> None:
        if event.role == "think_open" and not self._spoken:
            pass  # the prompt's <think> repeated by the model
        elif event.role == "think_close":
            self._state = CONTENT
        elif event.role == "im_end":
            self._error("unterminated_reasoning", "reasoning ended without </think>",
                        event.position)
            self._state = DONE
        elif event.role in ("section_begin", "call_begin"):
            self._on_content_marker(event)
        else:
            self._strip(event)

    def _on_content_marker(self, event: Event) -> None:
        if event.role == "think_open" and not self._spoken:
            self._state = REASONING  # the model thinks although the prompt did not ask
        elif event.role == "section_begin":
            self._enter_section(event)
        elif event.role == "call_begin":
            self._enter_section(event)
            self._start_call(event)
        elif event.role == "im_end":
            self._state = DONE
        else:
            self._strip(event)

    # ---- tool-call section -----------------------------------------------------------------

    def _enter_section(self, event: Event) -> None:
        self._section_start = event.position
        self._state = SECTION

    def _on_section_text(self, event: Event) -> None:
        self._stray.add(event)

    def _flush_stray(self) -> None:
        position, stray = self._stray.position, self._stray.take()
        if stray.strip():
            self._error("unexpected_text", "text between tool calls; dropped", position, stray)

    def _on_section_marker(self, event: Event) -> None:
        if event.role == "argument_begin" and self._stray.text.strip():
            self._recover_call(event)
            return
        self._flush_stray()
        if event.role == "call_begin":
            self._start_call(event)
        elif event.role == "section_end":
            self._state = CONTENT
        elif event.role == "im_end":
            self._unterminated_section()
            self._state = DONE
        else:
            self._strip(event)

    def _recover_call(self, event: Event) -> None:
        """`ID<|tool_call_argument_begin|>` without `<|tool_call_begin|>`: the text is the id."""
        position, text = self._stray.position, self._stray.take()
        self._error("missing_call_begin", "tool call without <|tool_call_begin|>; recovered",
                    position, text)
        self._call = CallState(raw=text, id_text=text, position=position)
        self._begin_arguments(event)

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
            self._call.raw += event.text
            self._drop_call("malformed_tool_call", "tool call has no arguments; dropped")
        elif event.role in _INTERRUPTING:
            self._drop_call("malformed_tool_call", f"tool call interrupted by {event.text}")
            self._dispatch(event)
        else:
            self._strip(event)

    def _drop_call(self, kind: str, message: str) -> None:
        """Drop a call that never started streaming (nothing of it reaches the content)."""
        self._state = SECTION
        self._error(kind, message, self._call.position, self._call.raw)

    def _begin_arguments(self, event: Event) -> None:
        call = self._call
        call.raw += event.text
        self._state = CALL_ARGS
        if self.catalog is None:
            call.discard = True
            return
        call.resolved = self.catalog.resolve(call.id_text)
        if call.resolved.name is None:
            call.deferred = True
            return
        self._open_call(call.resolved.name)
        if not call.resolved.known:
            self._error("unknown_tool", f"{call.resolved.name!r} is not a declared tool",
                        call.position, call.id_text.strip(), call.index)

    def _open_call(self, name: str) -> None:
        call = self._call
        call.index, self._next_index = self._next_index, self._next_index + 1
        ident = call_id(call.id_text, name, call.index)
        self._emit(Delta(tool_call=ToolCallDelta(call.index, ident, name)))

    # ---- arguments -------------------------------------------------------------------------

    def _on_args_text(self, event: Event) -> None:
        self._record(event)
        self._add_arguments(event.text)

    def _on_args_marker(self, event: Event) -> None:
        call = self._call
        if call.args.in_string:  # a marker inside a JSON string is argument text...
            if call.replay is None and event.role in _STRUCTURAL:
                call.replay, call.cut, call.raw_cut = [], len(call.args.text), len(call.raw)
            self._on_args_text(event)
        elif event.role == "call_end":
            call.raw += event.text
            self._state = SECTION
            self._commit_arguments()
            self._close_call(None)
        elif event.role in _INTERRUPTING:
            self._state = SECTION
            self._commit_arguments()
            self._close_call(f"tool call interrupted by {event.text}")
            self._dispatch(event)
        else:
            self._record(event)
            self._strip(event)

    def _record(self, event: Event) -> None:
        if self._call.replay is not None:
            self._call.replay.append(event)

    def _add_arguments(self, text: str) -> None:
        self._call.raw += text
        self._call.args.add(text)
        if self._call.replay is None:
            self._emit_arguments()

    def _emit_arguments(self) -> None:
        """Stream the argument text not sent yet (only once the call has started)."""
        call = self._call
        fragment = call.args.text[call.emitted:]
        if fragment and call.index >= 0:
            self._emit(Delta(tool_call=ToolCallDelta(call.index, arguments=fragment)))
            call.emitted = len(call.args.text)

    def _commit_arguments(self) -> None:
        """The string that held markers closed normally: they were argument text after all."""
        self._call.replay = None
        self._emit_arguments()

    def _roll_back(self) -> None:
        """...unless the string never closed: then the first such marker ended the arguments,
        and everything after it is parsed again as what it is."""
        call = self._call
        replay, call.replay = call.replay or [], None
        call.args.text, call.raw = call.args.text[: call.cut], call.raw[: call.raw_cut]
        self._state = SECTION
        self._emit_arguments()
        if replay[0].role == "call_end":
            call.raw += replay.pop(0).text
            self._close_call(None)
        else:
            self._close_call(f"tool call interrupted by {replay[0].text}")
        for event in replay:
            self._dispatch(event)

    def _close_call(self, interrupted: str | None) -> None:
        """The call's arguments are complete (or cut off): attribute, validate, mark."""
        call = self._call
        if call.discard:
            self._error("tools_disabled", "the request declares no tools; call dropped",
                        call.position, call.raw)
            return
        parsed, problem = json_object(call.args.text)
        if call.deferred and not self._open_inferred(parsed):
            return
        if interrupted is not None:
            self._error("unterminated_tool_call", interrupted, call.position, call.raw,
                        call.index)
        elif problem is not None:
            self._error("invalid_arguments", problem, call.position, call.raw, call.index)

    def _open_inferred(self, parsed: dict[str, object] | None) -> bool:
        """Start a call whose id named no tool, if its arguments tell which one it is."""
        assert self.catalog is not None
        name = self.catalog.infer(parsed)
        if name is None:
            self._error("unresolved_tool_call", f"cannot tell which tool the call "
                        f"{self._call.id_text.strip()!r} is for; dropped", self._call.position,
                        self._call.raw)
            return False
        self._open_call(name)
        self._emit_arguments()
        return True

    # ---- end of stream ---------------------------------------------------------------------

    def _on_done(self, event: Event) -> None:
        self._trailing.add(event)

    def _close(self) -> None:
        while self._state == CALL_ARGS and self._call.replay is not None:
            self._roll_back()
        state = self._state
        if state == REASONING:
            self._error("unterminated_reasoning", "output ended inside the reasoning", 0)
        elif state == SECTION:
            self._flush_stray()
        elif state == CALL_ID:
            self._drop_call("malformed_tool_call", "output ended inside a tool call")
        elif state == CALL_ARGS:
            self._close_call("output ended inside tool-call arguments")
        elif state == DONE and self._trailing.text.strip():
            self._error("text_after_end", "text after <|im_end|> was dropped",
                        self._trailing.position, self._trailing.text)
        if state in (SECTION, CALL_ID, CALL_ARGS):
            self._unterminated_section()


_TEXT_HANDLERS = {
    REASONING: OutputParser._on_text,
    CONTENT: OutputParser._on_text,
    SECTION: OutputParser._on_section_text,
    CALL_ID: OutputParser._on_call_id_text,
    CALL_ARGS: OutputParser._on_args_text,
    DONE: OutputParser._on_done,
}
_MARKER_HANDLERS = {
    REASONING: OutputParser._on_reasoning_marker,
    CONTENT: OutputParser._on_content_marker,
    SECTION: OutputParser._on_section_marker,
    CALL_ID: OutputParser._on_call_id_marker,
    CALL_ARGS: OutputParser._on_args_marker,
    DONE: OutputParser._on_done,
}


def _catalog(tools: ToolsArg) -> ToolCatalog | None:
    """The catalog calls are resolved against; None when tools are off."""
    if tools is True:
        return ToolCatalog.open()
    if tools is None or tools is False:
        return None
    catalog = tools if isinstance(tools, ToolCatalog) else ToolCatalog(tuple(tools))
    return catalog if catalog.tools or catalog.is_open else None


def parse_output(text: str, *, thinking: bool, tools: ToolsArg = True) -> ParseResult:
    """Parse a complete generation in one call."""
    parser = OutputParser(thinking=thinking, tools=tools)
    parser.feed(text)
    return parser.finish()
