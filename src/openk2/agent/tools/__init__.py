"""Typed tools and the toolset that dispatches model calls to them."""

from openk2.agent.tools.base import (
    FunctionTool,
    ModelRetry,
    Tool,
    ToolError,
    ToolOk,
    ToolResult,
    Toolset,
    params_schema,
    tool,
)

__all__ = [
    "FunctionTool",
    "ModelRetry",
    "Tool",
    "ToolError",
    "ToolOk",
    "ToolResult",
    "Toolset",
    "params_schema",
    "tool",
]
