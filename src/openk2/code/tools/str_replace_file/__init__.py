"""StrReplaceFile: exact-text edits, one or several, applied all together or not at all."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, description
from openk2.code.workspace import Workspace


class Edit(BaseModel):
    old: str = Field(description="Exact text to find (whitespace and indentation included).")
    new: str = Field(description="Text to put in its place.")
    replace_all: bool = Field(default=False,
                              description="Replace every occurrence instead of exactly one.")


class Params(BaseModel):
    path: str = Field(description="File to edit: absolute, or relative to the working directory.")
    edit: Edit | list[Edit] = Field(description="One edit, or a list applied in order.")


class StrReplaceFile(CodeTool[Params]):
    """Edits by exact replacement: a miss says where the closest text is, so the model can fix
    its `old` instead of guessing (as aider's failed-edit messages do)."""

    name = "StrReplaceFile"
    description = description(__file__, "str_replace_file")
    Params = Params

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def action(self, params: Params) -> Action:
        path = self.workspace.resolve(params.path)
        return Action(self.name, "write", f"edit file {path}", paths=(path,))

    async def run(self, params: Params) -> ToolResult:
        path = self.workspace.resolve(params.path)
        if not path.is_file():
            return ToolError(f"{params.path} does not exist; create it with WriteFile.")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return ToolError(f"{params.path} is not UTF-8 text; StrReplaceFile edits text only.")
        edits = params.edit if isinstance(params.edit, list) else [params.edit]
        for i, edit in enumerate(edits, 1):
            done = _apply(text, edit)
            if isinstance(done, str):
                text = done
                continue
            where = f"edit {i} of {len(edits)}" if len(edits) > 1 else "the edit"
            return ToolError(f"{where} was not applied ({done.message}); the file is unchanged.",
                             brief="edit failed")
        path.write_text(text, encoding="utf-8")
        shown = self.workspace.display(path)
        return ToolOk(f"applied {len(edits)} edit(s) to {shown}", brief=f"edited {shown}")


def _apply(text: str, edit: Edit) -> str | ToolError:
    if not edit.old:
        return ToolError("`old` is empty; give the exact text to replace")
    count = text.count(edit.old)
    if count == 0:
        return ToolError(f"`old` was not found. {closest_match(text, edit.old)}")
    if count > 1 and not edit.replace_all:
        return ToolError(f"`old` occurs {count} times; add surrounding lines to make it unique "
                         "or set replace_all")
    return text.replace(edit.old, edit.new, -1 if edit.replace_all else 1)


def closest_match(text: str, old: str) -> str:
    """Where the text most like `old` is (same number of lines), quoted with its line number."""
    lines = text.splitlines()
    want = old.strip("\n").splitlines() or [old]
    size = len(want)
    if not lines:
        return "The file is empty."
    target = "\n".join(want)
    best, best_at = 0.0, 0
    for start in range(max(1, len(lines) - size + 1)):
        window = "\n".join(lines[start : start + size])
        matcher = difflib.SequenceMatcher(None, window, target, autojunk=False)
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_at = ratio, start
    if best < 0.5:
        return "Nothing similar is in the file; ReadFile it to see its current text."
    quoted = "\n".join(lines[best_at : best_at + size])
    return (f"The closest text ({best:.0%} similar) starts at line {best_at + 1}:\n{quoted}\n"
            "Copy the exact text from there (ReadFile shows it) and retry.")
