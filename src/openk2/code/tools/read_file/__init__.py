"""ReadFile: numbered lines of a text file, a window at a time."""

from __future__ import annotations

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, description
from openk2.code.workspace import Workspace

MAX_LINES = 1000
MAX_LINE_CHARS = 2000
MAX_BYTES = 100_000


class Params(BaseModel):
    path: str = Field(description="File to read: absolute, or relative to the working directory.")
    line_offset: int = Field(default=1, ge=1, description="First line to read (1-based).")
    n_lines: int = Field(default=MAX_LINES, ge=1, le=MAX_LINES,
                         description=f"How many lines to read (at most {MAX_LINES}).")


class ReadFile(CodeTool[Params]):
    """Reads text files as `cat -n` would show them, so edits can cite exact lines."""

    name = "ReadFile"
    description = description(__file__, "read_file")
    Params = Params

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def action(self, params: Params) -> Action:
        path = self.workspace.resolve(params.path)
        return Action(self.name, "read", f"read file {path}", paths=(path,),
                      output="file", origin=str(path))

    async def run(self, params: Params) -> ToolResult:
        path = self.workspace.resolve(params.path)
        if not path.is_file():
            kind = "a directory (use Glob to list it)" if path.is_dir() else "not found"
            return ToolError(f"{params.path} is {kind}.", brief="no such file")
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            return ToolError(f"{params.path} is a binary file; ReadFile reads text only.")
        lines = data.decode("utf-8", errors="replace").splitlines()
        return ToolOk(_window(lines, params.line_offset, params.n_lines),
                      brief=f"read {self.workspace.display(path)}")


def _window(lines: list[str], offset: int, count: int) -> str:
    """Lines `offset`.. numbered, clipped per line and in total, with notes on what is left."""
    if offset > len(lines) and lines:
        return f"(the file has only {len(lines)} lines)"
    out: list[str] = []
    size, last = 0, offset - 1
    for no in range(offset, min(offset + count, len(lines) + 1)):
        text = lines[no - 1]
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [line truncated]"
        size += len(text) + 8
        if size > MAX_BYTES:
            break
        out.append(f"{no:6}\t{text}")
        last = no
    if not lines:
        return "(the file is empty)"
    if last < len(lines):
        out.append(f"[{len(lines) - last} more lines; call again with line_offset={last + 1}]")
    return "\n".join(out)
