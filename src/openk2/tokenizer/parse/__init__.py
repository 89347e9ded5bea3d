"""Streaming parsers for K2 output: reasoning, content and tool calls as OpenAI deltas."""

from openk2.tokenizer.parse.markers import (
    MARKER_ROLES,
    Event,
    MarkerFilter,
    MarkerScanner,
    contains_marker,
)
from openk2.tokenizer.parse.parser import OutputParser, parse_output
from openk2.tokenizer.parse.tools import CallName, DeclaredTool, ToolCatalog, call_id
from openk2.tokenizer.parse.types import (
    Delta,
    ParsedToolCall,
    ParseError,
    ParseResult,
    ToolCallDelta,
    fold_deltas,
)

__all__ = [
    "MARKER_ROLES",
    "CallName",
    "DeclaredTool",
    "Delta",
    "Event",
    "MarkerFilter",
    "MarkerScanner",
    "OutputParser",
    "ParseError",
    "ParseResult",
    "ParsedToolCall",
    "ToolCallDelta",
    "ToolCatalog",
    "call_id",
    "contains_marker",
    "fold_deltas",
    "parse_output",
]
