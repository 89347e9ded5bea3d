"""An MCP server for the tests: a read-only `add` and `auth`, and a `note` that writes a file.

Stdio by default; `--http PORT` serves streamable HTTP on 127.0.0.1:PORT/mcp instead.
"""

import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("demo")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def auth(ctx: Context) -> str:
    """The Authorization header this call came with (HTTP only)."""
    return (ctx.headers or {}).get("authorization", "(none)")


@server.tool()
def note(text: str) -> str:
    """Append a line to notes.log in the working directory."""
    with Path("notes.log").open("a") as f:
        f.write(text + "\n")
    return "noted"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
