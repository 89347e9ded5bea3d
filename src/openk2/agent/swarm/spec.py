"""Sub-agent types are data: a name, a system prompt, the tools it may use, its limits.

The orchestrator creates types at run time with `create_subagent`; users can predefine them
in YAML (a list of mappings with the fields below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_WORKER = "worker"
DEFAULT_WORKER_PROMPT = (
    "You are a sub-agent in a swarm. Do exactly the task you are given, using your tools when "
    "they help. Keep your working notes to yourself; end with a concise answer that contains "
    "only what the orchestrator needs, wrapped in <result>...</result>."
)


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentSpec:
    """One sub-agent type."""

    name: str
    """Unique name the orchestrator uses in `assign_task` and `swarm`."""
    system_prompt: str
    """Role, capabilities and limits of agents of this type."""
    tools: tuple[str, ...] = ()
    """Names of the tools (from the swarm's tool registry) this type may call."""
    provider: str | None = None
    """Key of the provider to use (None = the swarm's default)."""
    max_steps: int | None = None
    """Per-agent step limit (None = the swarm's default)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Free-form fields kept for UIs (e.g. a skill profile)."""

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 64:
            raise ValueError("an agent name must be 1-64 characters")
        if not self.system_prompt.strip():
            raise ValueError(f"agent {self.name!r} needs a non-empty system_prompt")

    def to_dict(self) -> dict[str, Any]:
        """Plain form for the event log."""
        out = asdict(self)
        out["tools"] = list(self.tools)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSpec:
        """Parse a mapping; unknown keys are an error (they are usually typos)."""
        allowed = {"name", "system_prompt", "tools", "provider", "max_steps", "meta"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown agent spec fields {sorted(unknown)}; allowed: {allowed}")
        return cls(**{**data, "tools": tuple(data.get("tools") or ())})


def load_specs(path: Path) -> list[AgentSpec]:
    """Read agent types from a YAML file holding a list of mappings."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a YAML list of agent specs")
    return [AgentSpec.from_dict(item) for item in data]


def default_worker() -> AgentSpec:
    """The generic type used when the orchestrator names none."""
    return AgentSpec(name=DEFAULT_WORKER, system_prompt=DEFAULT_WORKER_PROMPT)
