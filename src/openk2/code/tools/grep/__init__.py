"""Grep: regex search over files, by ripgrep when it is on PATH, by Python otherwise.

Both back ends print the same thing (`path:N:text` for matches, `path-N-text` for context,
`--` between groups, paths relative to the workspace, hidden files and binary files skipped,
`.gitignore` not applied), so the model sees no difference and the tests compare them.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, clip, description
from openk2.code.tools.grep.python_grep import GrepQuery, python_grep
from openk2.code.workspace import Workspace

MAX_LINES = 300


class Params(BaseModel):
    pattern: str = Field(description="Regular expression to search for.")
    path: str = Field(default=".", description="File or directory to search (default: the "
                      "working directory).")
    glob: str | None = Field(default=None, description="Only files whose path matches this glob, "
                             "e.g. `*.py` or `src/**/*.ts`.")
    ignore_case: bool = Field(default=False, description="Case-insensitive match.")
    context_lines: int = Field(default=0, ge=0, le=20,
                               description="Lines of context before and after each match.")
    output_mode: Literal["content", "files_with_matches"] = Field(
        default="content", description="`content`: matching lines; `files_with_matches`: "
        "only the paths of matching files.")


class Grep(CodeTool[Params]):
    """Searches file contents; `use_rg=None` picks ripgrep whenever it is installed."""

    name = "Grep"
    description = description(__file__, "grep")
    Params = Params

    def __init__(self, workspace: Workspace, use_rg: bool | None = None) -> None:
        self.workspace = workspace
        self.rg = shutil.which("rg") if use_rg is not False else None
        if use_rg and self.rg is None:
            raise ValueError("ripgrep (rg) is not on PATH")

    def action(self, params: Params) -> Action:
        path = self.workspace.resolve(params.path)
        return Action(self.name, "read", f"search {path}", paths=(path,),
                      output="file", origin=f"grep {params.pattern!r} in {path}")

    async def run(self, params: Params) -> ToolResult:
        target = self.workspace.resolve(params.path)
        if not target.exists():
            return ToolError(f"{params.path} does not exist.", brief="no such path")
        query = GrepQuery(pattern=params.pattern, target=target, base=self.workspace.root,
                          glob=params.glob, ignore_case=params.ignore_case,
                          context=params.context_lines,
                          files_only=params.output_mode == "files_with_matches")
        found = await (self._rg(query) if self.rg else asyncio.to_thread(python_grep, query))
        if isinstance(found, ToolError):
            return found
        lines = found.splitlines()
        if not lines:
            return ToolOk("No matches.", brief="no matches")
        text = "\n".join(lines[:MAX_LINES])
        if len(lines) > MAX_LINES:
            text += f"\n[{len(lines) - MAX_LINES} more lines; narrow the pattern, path or glob]"
        return ToolOk(clip(text), brief=f"{len(lines)} lines")

    async def _rg(self, q: GrepQuery) -> str | ToolError:
        assert self.rg is not None
        argv = [self.rg, "--no-heading", "--with-filename", "--color", "never", "--sort", "path",
                "--no-ignore", "--no-messages", "--no-config"]
        argv += ["-l"] if q.files_only else ["--line-number", "-C", str(q.context)]
        if q.ignore_case:
            argv.append("-i")
        if q.glob:
            argv += ["--glob", q.glob]
        argv += ["-e", q.pattern]
        argv += _rg_path(q.target, q.base)
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=q.base, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode not in (0, 1):
            return ToolError(f"grep failed: {err.decode(errors='replace').strip()}",
                             brief="grep failed")
        return out.decode("utf-8", errors="replace")


def _rg_path(target: Path, base: Path) -> list[str]:
    """rg's path argument: none for the workspace itself (so paths print bare), else relative."""
    if target == base:
        return []
    return [str(target.relative_to(base)) if target.is_relative_to(base) else str(target)]
