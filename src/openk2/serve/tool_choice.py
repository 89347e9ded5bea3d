"""Grammars for K2.6 replies that must take a shape: forced tool calls and structured content.

Servers guarantee these with structured decoding rather than hoping the model complies; openk2
does the same in K2.6's own wire format, so the output goes through the normal tool-call parser.
After optional reasoning (ended by `</think>` or a token budget) a forced tool call is

    <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>
    {compact JSON matching the tool's parameters}<|tool_call_end|> ... <|tool_calls_section_end|>

with every marker a special token (never the same text spelled in ordinary tokens), then a stop
token. The model chooses the function (under `required`), the argument values and, when
parallel calls are allowed, whether another call follows; call ids count on from the calls
earlier turns made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from openk2.engine.grammar import json_rule, string_literal

THINK_END = "</think>"
SECTION_BEGIN = "<|tool_calls_section_begin|>"
SECTION_END = "<|tool_calls_section_end|>"
CALL_BEGIN = "<|tool_call_begin|>"
ARG_BEGIN = "<|tool_call_argument_begin|>"
CALL_END = "<|tool_call_end|>"
TOOL_MARKERS = (SECTION_BEGIN, SECTION_END, CALL_BEGIN, ARG_BEGIN, CALL_END)
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}
TOOL_SECTION = "tool_section"
"""The rule name of a whole tool-call section."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may be forced to call."""

    name: str
    parameters: dict[str, Any]
    """JSON Schema of the arguments (an object schema)."""
    lenient: bool = False
    """Ignore schema keywords the engine cannot enforce (the tool is not `strict`)."""


def reply_grammar(body: str, reasoning_budget: int | None) -> str:
    """Lark text: optional bounded reasoning, `</think>`, then the rule `body` as the reply.

    Reasoning text cannot contain special tokens, so no tool marker or stop token appears in it.
    """
    if reasoning_budget is None:
        return f"start: {body}\n"
    return (
        f"start: reasoning {THINK_END} {body}\n"
        f"reasoning[max_tokens={reasoning_budget}]: /(?s:.*)/\n"
    )


def tool_call_grammar(
    tools: list[ToolSpec], first_index: int, max_calls: int, reasoning_budget: int | None
) -> str:
    """Lark text for a reply that is a tool-call section of 1..max_calls calls to `tools`."""
    return reply_grammar(TOOL_SECTION, reasoning_budget) + tool_section_rules(
        tools, first_index, max_calls
    )


def tool_section_rules(tools: list[ToolSpec], first_index: int, max_calls: int) -> str:
    """Lark rules defining `tool_section` (for a grammar whose reply may also be a tool call)."""
    if not tools:
        raise ValueError("a forced tool call needs at least one tool")
    if max_calls < 1:
        raise ValueError("max_calls must be >= 1")
    lines = [f"{TOOL_SECTION}: {SECTION_BEGIN} {_call_chain(max_calls)} {SECTION_END}\n"]
    for i in range(max_calls):
        names = " | ".join(f"fn_{i}_{t}" for t in range(len(tools)))
        lines.append(f"call_{i}: {CALL_BEGIN} ({names}) {CALL_END}\n")
        for t, tool in enumerate(tools):
            call_id = string_literal(f"functions.{tool.name}:{first_index + i}")
            lines.append(f"fn_{i}_{t}: {call_id} {ARG_BEGIN} args_{t}\n")
    for t, tool in enumerate(tools):
        schema = tool.parameters or EMPTY_OBJECT
        lines.append(f"args_{t}: {json_rule(schema, lenient=tool.lenient)}\n")
    return "".join(lines)


def _call_chain(max_calls: int) -> str:
    """`call_0 (call_1 (call_2)?)?`: calls in order, each one optional after the first."""
    chain = ""
    for i in range(max_calls - 1, 0, -1):
        chain = f"(call_{i} {chain})?" if chain else f"(call_{i})?"
    return f"call_0 {chain}".strip()


def next_tool_call_index(messages: Iterable[dict[str, Any]]) -> int:
    """Global tool-call counter: how many calls earlier assistant turns made."""
    return sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
