"""Configuration and outcome of a swarm run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openk2.agent.llm.provider import GenerationSettings
from openk2.agent.swarm.accounting import Pricing, RunAccounting
from openk2.agent.swarm.budgets import BudgetLimits
from openk2.agent.swarm.pacing import PacingPolicy
from openk2.agent.swarm.results import SubagentResult
from openk2.agent.swarm.scheduler import BackoffPolicy


@dataclass(kw_only=True, slots=True)
class SwarmConfig:
    """Limits and knobs of a swarm run."""

    limits: BudgetLimits = field(default_factory=BudgetLimits)
    """Run-wide budgets (steps, agents, tokens, wall-clock)."""
    agent_max_steps: int = 100
    """Steps one sub-agent may take per invocation."""
    orchestrator_max_steps: int = 4000
    """Steps the orchestrator may take (the run's step budget applies as well)."""
    agent_timeout_s: float | None = 7200.0
    """Wall-clock limit of one sub-agent invocation."""
    stall_timeout_s: float | None = 600.0
    """Watchdog: a sub-agent that completes no step for this long is aborted."""
    max_concurrency: int = 300
    """Model calls in flight across all providers."""
    provider_concurrency: int | None = None
    """Starting (and maximum) AIMD limit per provider; None = `max_concurrency`."""
    max_return_chars: int = 8000
    """Characters of sub-agent output returned to the parent per tool call."""
    repeat_limit: int = 3
    """Loop guard: identical consecutive steps that stop an agent."""
    subagent_tools: tuple[str, ...] = ()
    """Registered tools every sub-agent gets on top of its type's own (e.g. a workspace's file
    and calculator tools), so types the orchestrator creates at run time can use them too."""
    max_depth: int = 1
    """Nesting: sub-agents at a depth below this get the swarm tools too."""
    max_batch: int = 300
    """Items one `swarm` call may fan out over."""
    max_specs: int = 64
    """Agent types the orchestrator may create."""
    max_rps: float | None = None
    """Requests per second per provider, never exceeded (None = no cap; the pacer still
    learns the provider's own limit from its 429s and rate-limit headers)."""
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    """How each provider's request rate is learned and paced (`max_rps` overrides its cap)."""
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    """Per-call backoff after HTTP 429."""
    pricing: Pricing | None = None
    """Prices for cost accounting (None = cost 0)."""
    settings: GenerationSettings | None = None
    """Sampling settings for every call (each agent gets its own copy)."""


@dataclass(frozen=True, slots=True)
class SwarmOutcome:
    """The result of a run."""

    run_id: str
    state: str
    answer: str
    error: str | None
    agents: list[SubagentResult]
    accounting: RunAccounting

    def to_json(self) -> dict[str, Any]:
        """The `--json` summary object."""
        acc = self.accounting
        return {
            "run_id": self.run_id,
            "state": self.state,
            "answer": self.answer,
            "error": self.error,
            "agents": len(self.agents),
            "steps": acc.total_steps,
            "critical_steps": acc.critical_steps,
            "usage": acc.usage.to_dict(),
            "cost_usd": round(acc.cost, 6),
            "failures": [
                {"agent_id": r.agent_id, "name": r.name, "state": r.state, "error": r.error}
                for r in self.agents if r.state != "completed"
            ],
            "agents_by_state": {s: sum(r.state == s for r in self.agents)
                                for s in ("completed", "failed", "aborted")},
        }
