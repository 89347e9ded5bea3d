"""A stdio MCP server for the tests: a read-only `add` and a `note` that writes a file."""

from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("demo")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def note(text: str) -> str:
    """Append a line to notes.log in the working directory."""
    with Path("notes.log").open("a") as f:
        f.write(text + "\n")
    return "noted"


if __name__ == "__main__":
    server.run()
