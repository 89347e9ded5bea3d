"""Run accounting from the event log: steps, critical steps, usage and cost per agent.

Critical steps follow Kimi's definition (K2.5 report, PARL):
`CriticalSteps = sum over the parent's steps t of (1 + max_i S_sub,i^(t))`, where the max runs
over the sub-agent runs launched in step t. It is applied recursively, so nested swarms count
their own longest branch. A resumed agent is a new run launched in the step that resumed it.
Usage is kept per agent and rolled up to every ancestor, so a parent's figure includes the
tokens of everything it delegated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from openk2.agent.llm.message import Usage
from openk2.agent.swarm.state import MAIN
from openk2.agent.swarm.store import StoredEvent


@dataclass(frozen=True, kw_only=True, slots=True)
class Pricing:
    """Dollars per million tokens."""

    input_per_mtok: float = 0.0
    """Uncached prompt tokens."""
    output_per_mtok: float = 0.0
    """Completion tokens."""
    cached_per_mtok: float | None = None
    """Cached prompt tokens (None = same as uncached)."""

    def cost(self, usage: Usage) -> float:
        """Dollars for `usage`."""
        cached_rate = self.input_per_mtok if self.cached_per_mtok is None else self.cached_per_mtok
        fresh = usage.prompt_tokens - usage.cached_tokens
        total = fresh * self.input_per_mtok + usage.cached_tokens * cached_rate
        return (total + usage.completion_tokens * self.output_per_mtok) / 1e6


@dataclass(frozen=True, slots=True)
class RunAccounting:
    """Totals of one run."""

    total_steps: int
    critical_steps: int
    usage: Usage
    own_usage: dict[str, Usage] = field(default_factory=dict)
    rolled_usage: dict[str, Usage] = field(default_factory=dict)
    cost: float = 0.0


@dataclass(slots=True)
class _Invocation:
    agent_id: str
    steps: list[int] = field(default_factory=list)


def account(events: Iterable[StoredEvent], pricing: Pricing | None = None) -> RunAccounting:
    """Compute the run's accounting from its events (live or replayed)."""
    own: dict[str, Usage] = defaultdict(Usage)
    children: dict[str, list[str]] = defaultdict(list)
    launched: dict[tuple[str, int], list[_Invocation]] = defaultdict(list)
    current: dict[str, _Invocation] = {MAIN: _Invocation(MAIN)}
    total = 0
    for ev in events:
        if ev.kind in ("spawn", "resume"):
            inv = _Invocation(ev.agent_id)
            current[ev.agent_id] = inv
            launched[(ev.data["parent"], ev.data["parent_step"])].append(inv)
            if ev.kind == "spawn":
                children[ev.data["parent"]].append(ev.agent_id)
        elif ev.kind == "llm":
            total += 1
            own[ev.agent_id] = own[ev.agent_id] + _usage(ev.data["usage"])
            current.setdefault(ev.agent_id, _Invocation(ev.agent_id)).steps.append(ev.step)
    rolled = _roll_up(own, children)
    run_usage = sum(own.values(), Usage())
    return RunAccounting(
        total_steps=total,
        critical_steps=_critical(current[MAIN], launched),
        usage=run_usage,
        own_usage=dict(own),
        rolled_usage=rolled,
        cost=pricing.cost(run_usage) if pricing else 0.0,
    )


def _critical(inv: _Invocation, launched: dict[tuple[str, int], list[_Invocation]]) -> int:
    total = 0
    for step in inv.steps:
        subs = launched.get((inv.agent_id, step), ())
        total += 1 + max((_critical(s, launched) for s in subs), default=0)
    return total


def _roll_up(own: dict[str, Usage], children: dict[str, list[str]]) -> dict[str, Usage]:
    rolled: dict[str, Usage] = {}

    def visit(agent_id: str) -> Usage:
        if agent_id not in rolled:
            kids = sum((visit(c) for c in children.get(agent_id, ())), Usage())
            rolled[agent_id] = own.get(agent_id, Usage()) + kids
        return rolled[agent_id]

    for agent_id in set(own) | set(children):
        visit(agent_id)
    return rolled


def _usage(d: dict[str, int]) -> Usage:
    get = d.get
    return Usage(get("prompt_tokens", 0), get("completion_tokens", 0), get("cached_tokens", 0))
