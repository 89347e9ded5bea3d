"""Run-wide budgets: steps, sub-agents, tokens and wall-clock, checked before they are spent.

Steps and sub-agents are reserved *before* the LLM call or spawn they pay for, so the counts
can never pass their limits, however many agents run at once. Tokens can only be known after
a call; the budget stops new calls once the limit is reached and caps each call's
`max_tokens` at what is left, so the overshoot is bounded by the prompts of calls already in
flight. One step is held back for the orchestrator so it can always write the final answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from openk2.agent.llm.message import Usage


class BudgetExceededError(Exception):
    """A budget would be exceeded; `kind` is steps, agents, tokens or wall_clock."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(kw_only=True, slots=True)
class BudgetLimits:
    """Limits for one swarm run (`None` = unlimited)."""

    max_steps: int = 4000
    """LLM steps of all agents together, the orchestrator included."""
    max_agents: int = 300
    """Sub-agents that may be spawned in the run."""
    max_tokens: int | None = None
    """Prompt + completion tokens of all calls together."""
    wall_clock_s: float | None = None
    """Seconds from the start of the run."""
    orchestrator_reserve: int = 1
    """Steps only the orchestrator may use (so it can answer after its children)."""

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_agents < 0:
            raise ValueError("max_steps must be >= 1 and max_agents >= 0")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be positive")


@dataclass(slots=True)
class Budget:
    """Live counters against `BudgetLimits` (single event loop: no locking needed)."""

    limits: BudgetLimits
    steps: int = 0
    agents: int = 0
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)

    def admit_agents(self, n: int = 1) -> None:
        """Reserve `n` sub-agents, all or none."""
        left = self.limits.max_agents - self.agents
        if n > left:
            raise BudgetExceededError(
                "agents",
                f"the run may spawn {left} more sub-agents but {n} were requested; "
                "split the work into fewer, larger tasks",
            )
        self.agents += n

    def reserve_steps(self, n: int = 1, *, orchestrator: bool = False) -> None:
        """Reserve `n` LLM steps, all or none; checks tokens and wall-clock too."""
        self.check_clock()
        if self.limits.max_tokens is not None and self.usage.total_tokens >= self.limits.max_tokens:
            raise BudgetExceededError("tokens", f"token budget of {self.limits.max_tokens} used up")
        cap = self.limits.max_steps - (0 if orchestrator else self.limits.orchestrator_reserve)
        if self.steps + n > cap:
            raise BudgetExceededError(
                "steps", f"step budget exhausted ({self.steps} of {self.limits.max_steps} used)"
            )
        self.steps += n

    def grant_steps(self, want: int) -> int:
        """Reserve up to `want` sub-agent steps at once (remote backends); returns how many."""
        self.reserve_steps(0)  # clock and tokens
        cap = self.limits.max_steps - self.limits.orchestrator_reserve
        granted = max(0, min(want, cap - self.steps))
        self.steps += granted
        return granted

    def refund_steps(self, n: int) -> None:
        """Give back steps reserved in bulk but not used (remote backends)."""
        self.steps -= n

    def add_usage(self, usage: Usage) -> None:
        """Account a finished call."""
        self.usage = self.usage + usage

    def tokens_left(self) -> int | None:
        """Tokens still allowed, or None when unlimited."""
        if self.limits.max_tokens is None:
            return None
        return max(self.limits.max_tokens - self.usage.total_tokens, 0)

    def seconds_left(self) -> float | None:
        """Wall-clock seconds still allowed, or None when unlimited."""
        if self.limits.wall_clock_s is None:
            return None
        return self.limits.wall_clock_s - (time.monotonic() - self.started)

    def check_clock(self) -> None:
        """Raise if the run's wall-clock budget is spent."""
        left = self.seconds_left()
        if left is not None and left <= 0:
            raise BudgetExceededError("wall_clock", "wall-clock budget exhausted")
