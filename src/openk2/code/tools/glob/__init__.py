"""Glob: list files by pattern."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, description
from openk2.code.workspace import Workspace

MAX_MATCHES = 1000


class Params(BaseModel):
    pattern: str = Field(description="Glob pattern, e.g. `*.py`, `src/**/*.ts` (`**` = any depth).")
    directory: str | None = Field(default=None, description="Directory to search from (default: "
                                  "the working directory).")


class Glob(CodeTool[Params]):
    """Lists matching paths, sorted, `.git` left out, directories marked with a trailing `/`."""

    name = "Glob"
    description = description(__file__, "glob")
    Params = Params

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def _dir(self, params: Params) -> Path:
        return self.workspace.resolve(params.directory or ".")

    def action(self, params: Params) -> Action:
        d = self._dir(params)
        return Action(self.name, "read", f"list {d}/{params.pattern}", paths=(d,),
                      output="file", origin=f"file names under {d}")

    async def run(self, params: Params) -> ToolResult:
        d = self._dir(params)
        if not d.is_dir():
            return ToolError(f"{params.directory} is not a directory.", brief="no such directory")
        if params.pattern.startswith("/") or ".." in Path(params.pattern).parts:
            return ToolError("the pattern must be relative to `directory` and stay inside it.")
        paths = await asyncio.to_thread(_matches, d, params.pattern)
        if not paths:
            return ToolOk(f"No paths match {params.pattern!r}.", brief="no matches")
        shown = [self.workspace.display(p) + ("/" if p.is_dir() else "") for p in paths]
        text = "\n".join(shown[:MAX_MATCHES])
        if len(shown) > MAX_MATCHES:
            text += f"\n[{len(shown) - MAX_MATCHES} more; use a narrower pattern]"
        return ToolOk(text, brief=f"{len(shown)} paths")


def _matches(d: Path, pattern: str) -> list[Path]:
    return sorted(p for p in d.glob(pattern) if ".git" not in p.relative_to(d).parts)
