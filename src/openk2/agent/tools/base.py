"""Typed tools: pydantic parameters become the JSON schema, results and errors are values.

A tool never raises at the model: a bad call (unknown tool, invalid JSON, wrong fields) comes
back as a `ToolError` whose message says how to fix the call, so the model can retry. Tools
signal their own recoverable failures by returning `ToolError` or raising `ModelRetry`. Any
other exception is a bug in the tool or the runtime and propagates; the swarm turns it into a
failed sub-agent result instead of hiding it.
"""

from __future__ import annotations

import functools
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from openk2.agent.llm.message import ToolCall, ToolSpec

ParamsT = TypeVar("ParamsT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ToolOk:
    """A successful tool result; `output` goes to the model, `brief` to the UI."""

    output: str
    brief: str = ""


@dataclass(frozen=True, slots=True)
class ToolError:
    """A failed tool call; `message` tells the model what went wrong and how to fix it."""

    message: str
    brief: str = ""

    @property
    def output(self) -> str:
        """What the model sees."""
        return f"ERROR: {self.message}"


ToolResult: TypeAlias = ToolOk | ToolError


class ModelRetry(Exception):  # noqa: N818 - the name says what the model must do
    """Raised inside a tool to hand `message` back to the model as a `ToolError`."""


class Tool(ABC, Generic[ParamsT]):
    """A tool with typed parameters. Subclasses set `name`, `description`, `Params`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: type[ParamsT]

    @abstractmethod
    async def run(self, params: ParamsT) -> ToolResult:
        """Do the work; dependencies come from the constructor, never from globals."""

    def spec(self) -> ToolSpec:
        """The tool as the model sees it."""
        return ToolSpec(self.name, self.description, params_schema(self.Params))


@functools.cache
def _schema(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return json.dumps(schema)


def params_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema of a params model without pydantic's `title` noise (cached per model)."""
    return json.loads(_schema(model))


class FunctionTool(Tool[BaseModel]):
    """A tool made from an async function whose one argument is a pydantic model."""

    def __init__(
        self,
        fn: Callable[[Any], Awaitable[ToolResult | str]],
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        hints = get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        model = hints.get(params[0]) if len(params) == 1 else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{fn.__name__} must take exactly one pydantic model argument")
        self._fn = fn
        self.Params = model
        self.name = name or fn.__name__  # type: ignore[misc]
        self.description = description or inspect.getdoc(fn) or ""  # type: ignore[misc]

    async def run(self, params: BaseModel) -> ToolResult:
        out = await self._fn(params)
        return ToolOk(out) if isinstance(out, str) else out


def tool(
    name: str | None = None, description: str | None = None
) -> Callable[[Callable[[Any], Awaitable[ToolResult | str]]], FunctionTool]:
    """Decorator: `@tool()` over `async def f(p: Params) -> str | ToolResult`."""

    def wrap(fn: Callable[[Any], Awaitable[ToolResult | str]]) -> FunctionTool:
        return FunctionTool(fn, name, description)

    return wrap


class Toolset:
    """Tools by name, and the dispatch that turns any bad call into a `ToolError`."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        self._specs: list[ToolSpec] | None = None
        for t in tools:
            self.add(t)

    def add(self, t: Tool[Any]) -> None:
        """Register a tool; names must be unique."""
        if t.name in self._tools:
            raise ValueError(f"duplicate tool name {t.name!r}")
        self._tools[t.name] = t
        self._specs = None

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        """Registered tool names, in registration order."""
        return list(self._tools)

    def get(self, name: str) -> Tool[Any]:
        """The tool called `name` (KeyError if none)."""
        return self._tools[name]

    def specs(self) -> list[ToolSpec]:
        """What the model is told about every tool (built once; tools are immutable)."""
        if self._specs is None:
            self._specs = [t.spec() for t in self._tools.values()]
        return self._specs

    def subset(self, names: Iterable[str]) -> Toolset:
        """A toolset with only `names`; unknown names are an error (typos in agent specs)."""
        names = list(names)
        missing = [n for n in names if n not in self._tools]
        if missing:
            raise KeyError(f"unknown tools {missing}; available: {self.names}")
        return Toolset(self._tools[n] for n in names)

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Validate and run one call; model mistakes come back as `ToolError`."""
        t = self._tools.get(call.name)
        if t is None:
            return ToolError(
                f"there is no tool named {call.name!r}. Call one of: {', '.join(self.names)}.",
                brief="unknown tool",
            )
        params = _parse_params(t, call.arguments)
        if isinstance(params, ToolError):
            return params
        try:
            return await t.run(params)
        except ModelRetry as exc:
            return ToolError(str(exc), brief="retry")


def _parse_params(t: Tool[Any], arguments: str) -> BaseModel | ToolError:
    try:
        raw = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return ToolError(
            f"the arguments of {t.name} are not valid JSON ({exc.msg} at position {exc.pos}). "
            f"Send one JSON object matching this schema: {json.dumps(params_schema(t.Params))}",
            brief="invalid JSON",
        )
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        return ToolError(f"the arguments of {t.name} must be a JSON object, not {kind}.")
    try:
        return t.Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()
        )
        return ToolError(
            f"invalid arguments for {t.name}: {problems}. Fix these fields and call again; "
            f"schema: {json.dumps(params_schema(t.Params))}",
            brief="invalid arguments",
        )
