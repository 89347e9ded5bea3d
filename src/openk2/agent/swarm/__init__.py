"""Agent swarm: an orchestrator that fans work out to isolated sub-agents, durably."""

from openk2.agent.swarm.accounting import Pricing, RunAccounting, account
from openk2.agent.swarm.budgets import Budget, BudgetExceededError, BudgetLimits
from openk2.agent.swarm.pacing import PacingPolicy, RatePacer
from openk2.agent.swarm.prompts import ORCHESTRATOR_PROMPT
from openk2.agent.swarm.results import (
    TRUNCATION_MARKER,
    ArtifactStore,
    SubagentResult,
    cap_text,
)
from openk2.agent.swarm.runtime import Swarm, SwarmConfig, SwarmOutcome
from openk2.agent.swarm.scheduler import AdaptiveLimiter, BackoffPolicy, ScheduledProvider
from openk2.agent.swarm.spec import AgentSpec, load_specs
from openk2.agent.swarm.store import (
    EventStore,
    MemoryEventStore,
    SQLiteEventStore,
    StoredEvent,
    open_run_store,
)

__all__ = [
    "ORCHESTRATOR_PROMPT",
    "TRUNCATION_MARKER",
    "AdaptiveLimiter",
    "AgentSpec",
    "ArtifactStore",
    "BackoffPolicy",
    "Budget",
    "BudgetExceededError",
    "BudgetLimits",
    "EventStore",
    "MemoryEventStore",
    "PacingPolicy",
    "Pricing",
    "RatePacer",
    "RunAccounting",
    "SQLiteEventStore",
    "ScheduledProvider",
    "StoredEvent",
    "SubagentResult",
    "Swarm",
    "SwarmConfig",
    "SwarmOutcome",
    "account",
    "cap_text",
    "load_specs",
    "open_run_store",
]
