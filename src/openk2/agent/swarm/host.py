"""What the swarm's tools and per-agent hooks may ask of the runtime that runs them.

`runtime.Swarm` builds the orchestration tools (`tools.py`) and the loop hooks (`hooks.py`)
and hands itself in; they see it only through `SwarmHost`. The imports therefore run one way,
runtime → tools, hooks → host, and the runtime sits above everything it drives (the
`agent.swarm` layers contract in pyproject.toml keeps it so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from openk2.agent.swarm.budgets import Budget
from openk2.agent.swarm.config import SwarmConfig
from openk2.agent.swarm.results import ArtifactStore, SubagentResult
from openk2.agent.swarm.spec import AgentSpec
from openk2.agent.swarm.store import EventStore
from openk2.agent.tools.base import ToolResult


class SwarmHost(Protocol):
    """The running swarm, as its tools and hooks see it."""

    config: SwarmConfig
    budget: Budget
    store: EventStore
    artifacts: ArtifactStore

    def log(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Append an event to the run's durable log."""
        ...

    def register_spec(self, spec: AgentSpec) -> ToolResult:
        """Add an agent type (`create_subagent`)."""
        ...

    async def delegate(
        self, parent_id: str, step: int, jobs: Sequence[tuple[str, str, str]]
    ) -> list[SubagentResult]:
        """Run one sub-agent per (agent name, prompt, idempotency key), concurrently."""
        ...

    async def resume_agents(
        self, parent_id: str, step: int, follow_ups: Mapping[str, str], key: str
    ) -> list[SubagentResult]:
        """Continue the given agents with their context, concurrently."""
        ...
