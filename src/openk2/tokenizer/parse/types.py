"""Values the output parser produces: stream deltas, structured errors, the final result.

The final `ParseResult` is by definition the fold of the deltas (`fold_deltas`): content and
reasoning are the concatenated text deltas, a tool call is its start delta plus its argument
fragments, and an error delta that names a `tool_call_index` marks that call as malformed
(its `error`), without removing it: what a malformed call becomes in a response is the
server's decision. Building the result this way keeps the streaming and non-streaming views
consistent by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ParseError:
    """One problem in the generated text. The text involved is never lost: it is in `raw` and,
    for text outside tool calls, also in the content or reasoning."""

    kind: str
    """Stable identifier, e.g. `invalid_arguments`, `unterminated_tool_call` (see parser)."""
    message: str
    """Human-readable explanation."""
    position: int
    """Character offset in the generated text where the problem starts."""
    raw: str = ""
    """The offending text (a whole tool call for call-level errors)."""
    tool_call_index: int | None = None
    """Stream index of the tool call this error marks as malformed, if any."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "position": self.position,
                "raw": self.raw, "tool_call_index": self.tool_call_index}


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A tool call's start (`id` and `name` set) or one fragment of its JSON arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Delta:
    """One streaming event; exactly one field is set."""

    content: str | None = None
    reasoning_content: str | None = None
    tool_call: ToolCallDelta | None = None
    error: ParseError | None = None

    def to_openai(self, reasoning_key: str = "reasoning_content") -> dict[str, Any] | None:
        """The `choices[0].delta` payload of an OpenAI stream chunk (None for errors).

        `reasoning_key`: vLLM-style servers send `reasoning_content`; the K2.6 API says
        `reasoning`.
        """
        if self.content is not None:
            return {"content": self.content}
        if self.reasoning_content is not None:
            return {reasoning_key: self.reasoning_content}
        if self.tool_call is None:
            return None
        call = self.tool_call
        item: dict[str, Any] = {"index": call.index}
        if call.id is not None:
            item.update(id=call.id, type="function",
                        function={"name": call.name, "arguments": call.arguments})
        else:
            item["function"] = {"arguments": call.arguments}
        return {"tool_calls": [item]}


@dataclass(slots=True)
class ParsedToolCall:
    """One tool call of the result; `error` is set when the model botched it."""

    index: int
    id: str
    name: str
    arguments: str
    """The argument text as the model wrote it (outer whitespace removed)."""
    error: ParseError | None = None
    """First problem found (`invalid_arguments`, `unknown_tool`, `unterminated_tool_call`)."""

    @property
    def malformed(self) -> bool:
        return self.error is not None

    def to_openai(self) -> dict[str, Any]:
        """OpenAI shape: `{"id", "type": "function", "function": {"name", "arguments"}}`."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True)
class ParseResult:
    """The whole parsed message: what a non-streaming response returns."""

    content: str | None
    reasoning_content: str | None
    tool_calls: list[ParsedToolCall]
    errors: list[ParseError] = field(default_factory=list)

    def openai_tool_calls(self, *, include_malformed: bool = True) -> list[dict[str, Any]]:
        """The calls in OpenAI shape; malformed ones keep their raw arguments (as vLLM does)."""
        return [c.to_openai() for c in self.tool_calls if include_malformed or not c.malformed]

    def to_message(self, reasoning_key: str = "reasoning_content", *,
                   include_malformed: bool = True) -> dict[str, Any]:
        """An OpenAI assistant message (`tool_calls` only when there are some)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning_content is not None:
            message[reasoning_key] = self.reasoning_content
        calls = self.openai_tool_calls(include_malformed=include_malformed)
        if calls:
            message["tool_calls"] = calls
        return message


def fold_deltas(deltas: Iterable[Delta]) -> ParseResult:
    """Combine stream deltas into the final result (see module docstring)."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, ParsedToolCall] = {}
    errors: list[ParseError] = []
    for delta in deltas:
        if delta.content is not None:
            content.append(delta.content)
        elif delta.reasoning_content is not None:
            reasoning.append(delta.reasoning_content)
        elif delta.tool_call is not None:
            _fold_call(calls, delta.tool_call)
        elif delta.error is not None:
            errors.append(delta.error)
            _mark_call(calls, delta.error)
    tool_calls = [c for _, c in sorted(calls.items())]
    return ParseResult("".join(content) or None, "".join(reasoning) or None, tool_calls, errors)


def _fold_call(calls: dict[int, ParsedToolCall], part: ToolCallDelta) -> None:
    if part.id is not None:
        calls[part.index] = ParsedToolCall(part.index, part.id, part.name or "", part.arguments)
    elif part.index in calls:
        calls[part.index].arguments += part.arguments


def _mark_call(calls: dict[int, ParsedToolCall], error: ParseError) -> None:
    call = calls.get(error.tool_call_index) if error.tool_call_index is not None else None
    if call is not None and call.error is None:
        call.error = error
