"""Streaming parsers for K2 output: reasoning, content and tool calls as OpenAI deltas."""

from openk2.tokenizer.parse.calls import parse_tool_call_id
from openk2.tokenizer.parse.markers import MARKER_ROLES, Event, MarkerScanner
from openk2.tokenizer.parse.parser import OutputParser, parse_output
from openk2.tokenizer.parse.types import Delta, ParseError, ParseResult, ToolCallDelta, fold_deltas

__all__ = [
    "MARKER_ROLES",
    "Delta",
    "Event",
    "MarkerScanner",
    "OutputParser",
    "ParseError",
    "ParseResult",
    "ToolCallDelta",
    "fold_deltas",
    "parse_output",
    "parse_tool_call_id",
]
