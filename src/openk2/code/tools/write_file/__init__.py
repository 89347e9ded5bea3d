"""WriteFile: create, overwrite or append to a file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, description
from openk2.code.workspace import Workspace


class Params(BaseModel):
    path: str = Field(description="File to write: absolute, or relative to the working directory.")
    content: str = Field(description="The text to write.")
    mode: Literal["overwrite", "append"] = Field(
        default="overwrite", description="`overwrite` replaces the file, `append` adds to its end.")


class WriteFile(CodeTool[Params]):
    """Writes whole files; parents are created, so new modules need one call."""

    name = "WriteFile"
    description = description(__file__, "write_file")
    Params = Params

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def action(self, params: Params) -> Action:
        path = self.workspace.resolve(params.path)
        verb = "append to" if params.mode == "append" else "write"
        return Action(self.name, "write", f"{verb} file {path}", paths=(path,),
                      replaces=params.mode == "overwrite")

    async def run(self, params: Params) -> ToolResult:
        path = self.workspace.resolve(params.path)
        if path.is_dir():
            return ToolError(f"{params.path} is a directory; give a file path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if params.mode == "append" else "w", encoding="utf-8") as f:
            f.write(params.content)
        shown = self.workspace.display(path)
        verb = "appended" if params.mode == "append" else "wrote"
        return ToolOk(f"{verb} {len(params.content)} characters to {shown}",
                      brief=f"{verb} {shown}")
