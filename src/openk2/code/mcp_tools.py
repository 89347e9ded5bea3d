"""MCP servers' tools as agent tools named `mcp__SERVER__TOOL`, over stdio or streamable HTTP.

Both transports come from the `mcp` SDK. Servers are the user's own (from
`~/.config/openk2/code.toml` or `--mcp-config`; never from a project's file, which would let a
cloned repository start commands or send its tokens anywhere). Stdio servers run outside the
sandbox, like any program the user starts; HTTP servers are reached at their `url` with the
configured `headers`. Every call of their tools goes through the gate: a tool that declares
`readOnlyHint` runs, any other asks (yolo: runs). What a tool returns is marked as untrusted
data (by the gate, `code.gate.as_data`) before the model sees it.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from openk2.agent.llm.message import ToolSpec
from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.config import ConfigError
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, clip

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One MCP server: its name (the tool-name prefix) and how to reach it.

    Exactly one of `command` (a stdio program to start) and `url` (a streamable-HTTP
    endpoint, sent `headers` on every request, e.g. an Authorization token) is set.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = field(default=None)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_servers(entries: Mapping[str, Any]) -> list[McpServerSpec]:
    """`{name: {command, args?, env?} | {url, headers?}}` (TOML `[mcp_servers.NAME]` or JSON)."""
    specs = []
    for name, entry in entries.items():
        if not _NAME.match(name):
            raise ConfigError(f"MCP server name {name!r} must be letters, digits, _ or -")
        if not isinstance(entry, Mapping):
            raise ConfigError(f"MCP server {name!r} must be a table of settings")
        specs.append(_http_spec(name, entry) if "url" in entry else _stdio_spec(name, entry))
    return specs


def _stdio_spec(name: str, entry: Mapping[str, Any]) -> McpServerSpec:
    if not isinstance(entry.get("command"), str):
        raise ConfigError(f"MCP server {name!r} needs a `command` string or a `url`")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"MCP server {name!r}: `args` must be a list of strings")
    env = entry.get("env")
    return McpServerSpec(name, entry["command"], tuple(args),
                         {str(k): str(v) for k, v in env.items()} if env else None)


def _http_spec(name: str, entry: Mapping[str, Any]) -> McpServerSpec:
    url = entry["url"]
    if "command" in entry:
        raise ConfigError(f"MCP server {name!r}: give either `command` or `url`, not both")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"MCP server {name!r}: `url` must be an http:// or https:// URL")
    headers = entry.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"MCP server {name!r}: `headers` must map names to strings")
    return McpServerSpec(name, url=url, headers={str(k): v for k, v in headers.items()})


def load_mcp_config(path: Path) -> list[McpServerSpec]:
    """A Claude/kimi-style JSON file: `{"mcpServers": {name: {command, ...} | {url, ...}}}`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read MCP config {path}: {exc}") from exc
    return parse_servers(data.get("mcpServers", data) if isinstance(data, dict) else {})


class _Arguments(BaseModel):
    """Whatever the MCP tool takes; the server validates against its own schema."""

    model_config = ConfigDict(extra="allow")


class McpTool(CodeTool[_Arguments]):
    """One tool of a connected server."""

    Params = _Arguments

    def __init__(self, server: str, tool: Any, client: Any) -> None:
        self.server = server
        self.remote_name = tool.name
        self.name = f"mcp__{server}__{tool.name}"  # type: ignore[misc]
        self.description = tool.description or f"{tool.name} from MCP server {server}"  # type: ignore[misc]
        self.schema = dict(tool.input_schema or {"type": "object", "properties": {}})
        self.schema.pop("title", None)
        hints = tool.annotations
        self.read_only = bool(hints and hints.read_only_hint)
        self.client = client

    def spec(self) -> ToolSpec:
        """The server's own schema, as it sent it."""
        return ToolSpec(self.name, self.description, self.schema)

    def action(self, params: _Arguments) -> Action:
        return Action(self.name, "tool", f"call MCP tool {self.server}.{self.remote_name}",
                      arguments=params.model_dump(), read_only=self.read_only, output="mcp",
                      origin=f"{self.server}.{self.remote_name}")

    async def run(self, params: _Arguments) -> ToolResult:
        try:
            result = await self.client.call_tool(self.remote_name, params.model_dump())
        except Exception as exc:  # the server died or broke the protocol: tell the model
            return ToolError(f"MCP server {self.server} failed: {exc}", brief="mcp error")
        text = "\n".join(getattr(c, "text", f"[{c.type} content]") for c in result.content)
        if result.is_error:
            return ToolError(clip(text), brief="mcp tool error")
        return ToolOk(clip(text), brief=f"{self.server}.{self.remote_name}")


@contextlib.asynccontextmanager
async def mcp_tools(specs: Sequence[McpServerSpec], cwd: Path) -> AsyncIterator[list[McpTool]]:
    """Start every server, list its tools, and stop them all when the block exits."""
    from mcp import Client

    async with contextlib.AsyncExitStack() as stack:
        tools: list[McpTool] = []
        for spec in specs:
            try:
                transport = await _transport(spec, cwd, stack)
                client = await stack.enter_async_context(Client(transport))
                listed = await client.list_tools()
            except Exception as exc:
                where = spec.url or spec.command
                raise ConfigError(f"MCP server {spec.name!r} ({where}) did not start: "
                                  f"{_reason(exc)}") from exc
            tools += [McpTool(spec.name, t, client) for t in listed.tools]
        yield tools


async def _transport(spec: McpServerSpec, cwd: Path, stack: contextlib.AsyncExitStack) -> Any:
    """What `mcp.Client` connects through: stdio parameters, or an HTTP transport whose
    httpx client (carrying the configured headers) lives as long as the session."""
    if spec.url is None:
        from mcp.client.stdio import StdioServerParameters

        return StdioServerParameters(command=spec.command or "", args=list(spec.args),
                                     env=spec.env, cwd=cwd)
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = await stack.enter_async_context(create_mcp_http_client(headers=spec.headers))
    return streamable_http_client(spec.url, http_client=http)


def _reason(exc: BaseException) -> str:
    """The first real error inside the SDK's task-group wrappers (which only say "1 error")."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
