"""The coding tools, with kimi-cli's names and parameters (K2.x were trained on that harness).

One folder per tool: the class in `__init__.py`, the model-facing description in a sibling
`.md`. `default_tools()` builds the standard set for a workspace.
"""

from __future__ import annotations

from typing import Any

from openk2.code.tools.base import CodeTool, ShellLauncher, TodoBoard
from openk2.code.workspace import Workspace


def default_tools(
    workspace: Workspace, launcher: ShellLauncher, todos: TodoBoard
) -> list[CodeTool[Any]]:
    """ReadFile, WriteFile, StrReplaceFile, Glob, Grep, Shell and SetTodoList."""
    from openk2.code.tools.glob import Glob
    from openk2.code.tools.grep import Grep
    from openk2.code.tools.read_file import ReadFile
    from openk2.code.tools.set_todo_list import SetTodoList
    from openk2.code.tools.shell import Shell
    from openk2.code.tools.str_replace_file import StrReplaceFile
    from openk2.code.tools.write_file import WriteFile

    return [
        ReadFile(workspace), WriteFile(workspace), StrReplaceFile(workspace), Glob(workspace),
        Grep(workspace), Shell(workspace, launcher), SetTodoList(todos),
    ]  # fmt: skip
