"""Direct tools over a workspace: calculator, read_file, kv_get and kv_set.

The tools only adapt a `World` (anything that answers a direct tool call with text) to the
agent's `Tool` interface; the world decides the results. `openk2 chat` and
`openk2 swarm --workspace` bind them to the deterministic world that wrote the embedded
model's training chats (`train.synthetic.ToolWorld`), so a model served through the real
runtime sees exactly the tool results it was trained on; their names, descriptions and
schemas are the ones it was trained on too, so change none of them.
`read_workspace` loads a directory (its text files become readable, `kv.json` seeds the
key-value store) or a world JSON file into the world's JSON form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from openk2.agent.llm.message import ToolSpec
from openk2.agent.tools.base import Tool, ToolError, ToolOk, ToolResult, Toolset, params_schema

MAX_WORKSPACE_FILE = 64 * 1024
"""Bytes of one workspace file that read_file may return (bigger files are left out)."""


class CalculatorParams(BaseModel):
    expression: str = Field(description="Integer arithmetic with + - * // % and parentheses, "
                            "e.g. 12*(3+4)")


class ReadFileParams(BaseModel):
    path: str = Field(description="Path of the file, as given in the task")


class KvGetParams(BaseModel):
    key: str = Field(description="Key name")


class KvSetParams(BaseModel):
    key: str = Field(description="Key name")
    value: str = Field(description="Value to store")


class World(Protocol):
    """What answers the direct tools: result text, or `Error: ...` text for a bad call."""

    def call(self, name: str, arguments: str | dict[str, Any]) -> str:
        """Run tool `name` on `arguments`."""
        ...


class _WorldTool(Tool[BaseModel]):
    """One direct tool of a `World`; the world's error texts become `ToolError`s."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def run(self, params: BaseModel) -> ToolResult:
        out = self.world.call(self.name, params.model_dump())
        if out.startswith("Error: "):
            return ToolError(out.removeprefix("Error: "))
        return ToolOk(out)


class Calculator(_WorldTool):
    name = "calculator"
    description = "Evaluate an integer arithmetic expression."
    Params = CalculatorParams


class ReadFile(_WorldTool):
    name = "read_file"
    description = "Read a text file of the workspace."
    Params = ReadFileParams


class KvGet(_WorldTool):
    name = "kv_get"
    description = "Read the value stored under a key."
    Params = KvGetParams


class KvSet(_WorldTool):
    name = "kv_set"
    description = "Store a value under a key."
    Params = KvSetParams


_CLASSES: tuple[type[_WorldTool], ...] = (Calculator, ReadFile, KvGet, KvSet)


def world_tools(world: World) -> Toolset:
    """The four direct tools bound to `world`."""
    return Toolset(cls(world) for cls in _CLASSES)


def world_tool_specs() -> list[ToolSpec]:
    """What a model is told about the direct tools (no world needed)."""
    return [ToolSpec(cls.name, cls.description, params_schema(cls.Params)) for cls in _CLASSES]


def read_workspace(path: Path) -> dict[str, Any]:
    """A world's JSON form (`{"files": {...}, "kv": {...}}`, what `ToolWorld.from_json` reads)
    from a directory (text files under it by relative path, `kv.json` as the store) or from a
    world JSON file."""
    if path.is_file():
        return _read_json(path)
    if not path.is_dir():
        raise FileNotFoundError(f"workspace {path} is neither a directory nor a JSON file")
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "kv.json"):
        if file.stat().st_size <= MAX_WORKSPACE_FILE:
            try:
                files[file.relative_to(path).as_posix()] = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary files are not readable by the model
    kv_file = path / "kv.json"
    kv = _read_json(kv_file) if kv_file.is_file() else {}
    return {"files": files, "kv": {str(k): str(v) for k, v in kv.items()}}


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data
