"""SetTodoList: the agent's plan as a checklist, replaced whole on every call."""

from __future__ import annotations

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, Todo, TodoBoard, description

_MARK = {"pending": "[ ]", "in_progress": "[~]", "done": "[x]"}


class Params(BaseModel):
    todos: list[Todo] = Field(description="The whole list: each item a `title` and a `status` "
                              "(pending, in_progress or done).")


class SetTodoList(CodeTool[Params]):
    """Keeps the list on the session's `TodoBoard` (it survives resume through the log)."""

    name = "SetTodoList"
    description = description(__file__, "set_todo_list")
    Params = Params

    def __init__(self, board: TodoBoard) -> None:
        self.board = board

    def action(self, params: Params) -> Action:
        return Action(self.name, "state", f"set a todo list of {len(params.todos)} items")

    async def run(self, params: Params) -> ToolResult:
        self.board.items = list(params.todos)
        done = sum(t.status == "done" for t in params.todos)
        lines = [f"{_MARK[t.status]} {t.title}" for t in params.todos]
        return ToolOk("\n".join(lines) or "(empty list)",
                      brief=f"todos {done}/{len(params.todos)} done")
