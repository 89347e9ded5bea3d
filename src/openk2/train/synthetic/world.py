"""The deterministic tool world behind the synthetic chats: calculator, files, key-value store.

The same `ToolWorld` produces the tool results written into the training chats and answers the
model's real tool calls when the trained model is evaluated, so a model that calls the right tool
with the right arguments sees exactly the results it was trained on. Pure Python, no torch, so
the evaluation harness and the agent runtime can use it too.

The swarm tools (`create_subagent`, `assign_task`) are declared here but run by the swarm runtime:
`create_subagent` only registers a sub-agent, and `assign_task` returns that sub-agent's answer;
their result texts are part of the `ChatProfile` (profile.py).
"""

from __future__ import annotations

import ast
import json
import operator
from dataclasses import dataclass, field
from typing import Any

KV_STORED = "Stored {key}."
"""Result text of a successful `kv_set`."""

WORKER_TOOL_NAMES = ("calculator", "read_file", "kv_get", "kv_set")
"""Tools a sub-agent gets: every direct tool, never the swarm tools (no recursive spawning)."""

SWARM_TOOL_NAMES = ("create_subagent", "assign_task")
"""The orchestrator's extra tools (K2.5 Agent Swarm signatures)."""

_DESCRIPTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "calculator": ("Evaluate an integer arithmetic expression", {"expression": "e.g. 12*(3+4)"}),
    "read_file": ("Read a text file", {"path": "File path"}),
    "kv_get": ("Read the value stored under a key", {"key": "Key name"}),
    "kv_set": ("Store a value under a key", {"key": "Key name", "value": "Value to store"}),
    "create_subagent": (
        "Create a sub-agent with its own system prompt",
        {"name": "Unique agent name", "system_prompt": "The agent's role"},
    ),
    "assign_task": (
        "Run a task on a sub-agent and return its answer",
        {"agent": "Name of a created agent", "prompt": "The task"},
    ),
}


def tool_schema(name: str) -> dict[str, Any]:
    """The OpenAI function-tool schema of one tool (every parameter is a required string)."""
    if name not in _DESCRIPTIONS:
        raise KeyError(f"unknown synthetic tool {name!r}; known: {sorted(_DESCRIPTIONS)}")
    description, params = _DESCRIPTIONS[name]
    props = {p: {"type": "string", "description": d} for p, d in params.items()}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(params)},
        },
    }


def tool_schemas(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Schemas for `names`, in order."""
    return [tool_schema(n) for n in names]


@dataclass(kw_only=True, slots=True)
class ToolWorld:
    """Files and a key-value store for one task; `call` runs a direct tool against them."""

    files: dict[str, str] = field(default_factory=dict)
    """Path → content, what `read_file` sees."""
    kv: dict[str, str] = field(default_factory=dict)
    """Key → value: the store's initial contents."""
    writes: dict[str, str] = field(default_factory=dict)
    """What `kv_set` stored during this session; read before `kv`, never exported."""

    def call(self, name: str, arguments: str | dict[str, Any]) -> str:
        """Run tool `name` on JSON `arguments`; errors come back as text the model can act on."""
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else dict(arguments)
        except json.JSONDecodeError as exc:
            return f"Error: arguments are not valid JSON ({exc.msg})."
        if not isinstance(args, dict):
            return "Error: arguments must be a JSON object."
        handler = {
            "calculator": self._calculator,
            "read_file": self._read_file,
            "kv_get": self._kv_get,
            "kv_set": self._kv_set,
        }.get(name)
        if handler is None:
            return f"Error: unknown tool {name!r}."
        try:
            return handler(args)
        except KeyError as exc:
            return f"Error: missing argument {exc.args[0]!r}."

    def _calculator(self, args: dict[str, Any]) -> str:
        try:
            return str(evaluate(str(args["expression"])))
        except (ValueError, ZeroDivisionError, SyntaxError) as exc:
            return f"Error: {exc}"

    def _read_file(self, args: dict[str, Any]) -> str:
        path = str(args["path"])
        return self.files.get(path, f"Error: no such file {path!r}.")

    def _kv_get(self, args: dict[str, Any]) -> str:
        key = str(args["key"])
        if key in self.writes:
            return self.writes[key]
        return self.kv.get(key, f"Error: no value stored under {key!r}.")

    def _kv_set(self, args: dict[str, Any]) -> str:
        key, value = str(args["key"]), str(args["value"])
        self.writes[key] = value
        return KV_STORED.format(key=key)

    def to_json(self) -> dict[str, Any]:
        """The initial world, JSON-ready (stored with each task so evaluation can rebuild it)."""
        return {"files": dict(self.files), "kv": dict(self.kv)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ToolWorld:
        """Rebuild a world from `to_json` output."""
        return cls(files=dict(data.get("files", {})), kv=dict(data.get("kv", {})))


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_MAX_MAGNITUDE = 10**12


def evaluate(expression: str) -> int:
    """Evaluate integer arithmetic (+ − × // %, parentheses, unary minus) without eval().

    Raises ValueError for anything else, and for results beyond ±10¹², so a model-written
    expression can never run code or blow up memory.
    """
    if len(expression) > 200:
        raise ValueError("expression too long")
    tree = ast.parse(expression.strip(), mode="eval")
    return _eval_node(tree.body)


def _eval_node(node: ast.AST) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_node(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        value = _BINOPS[type(node.op)](_eval_node(node.left), _eval_node(node.right))
        if abs(value) > _MAX_MAGNITUDE:
            raise ValueError("result too large")
        return value
    raise ValueError(f"unsupported expression element {type(node).__name__}")
