"""SwarmBench-Sim workloads: seeded wide, deep and heavy-tailed tasks, and a 429 limiter.

A workload is a list of orchestrator rounds, each fanning out over items; every item is a
sub-agent that needs a fixed number of LLM steps, each with a seeded lognormal latency. Both
runtimes (openk2 and LangGraph) replay exactly the same latencies, so the differences are the
runtimes' own. `ideal()` is the critical-path latency: per round, the orchestrator's call plus
the slowest item's summed latencies, plus the final answer.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Workload:
    """Rounds of items with per-step latencies (seconds)."""

    name: str
    rounds: list[list[str]]
    steps: dict[str, int]
    latency: dict[tuple[str, int], float]
    orch_latency: list[float]

    @property
    def total_steps(self) -> int:
        """LLM steps of the whole run (orchestrator included)."""
        return sum(self.steps.values()) + len(self.orch_latency)

    @property
    def agents(self) -> int:
        """Sub-agents of the whole run."""
        return len(self.steps)

    def item_time(self, item: str) -> float:
        """Summed latency of one item's steps."""
        return sum(self.latency[(item, k)] for k in range(1, self.steps[item] + 1))

    def ideal(self) -> float:
        """Critical-path wall-clock: no runtime overhead, unlimited concurrency."""
        per_round = [max(self.item_time(i) for i in items) for items in self.rounds]
        return sum(self.orch_latency) + sum(per_round)

    def critical_steps(self) -> int:
        """Kimi's CriticalSteps for this workload."""
        return sum(1 + max(self.steps[i] for i in items) for items in self.rounds) + 1

    def scaled(self, factor: float) -> Workload:
        """The same workload with every latency multiplied by `factor` (0 = no latency)."""
        lat = {k: v * factor for k, v in self.latency.items()}
        return Workload(self.name, self.rounds, self.steps, lat,
                        [v * factor for v in self.orch_latency])


def _lognormal(rng: random.Random, median: float) -> float:
    return median * rng.lognormvariate(0.0, 0.5)


def make(name: str, rounds: int, width: int, steps: int, median: float, seed: int,
         tail_frac: float = 0.0, tail_factor: float = 10.0) -> Workload:
    """`rounds` fan-outs of `width` items, `steps` LLM steps each."""
    rng = random.Random(seed)
    all_rounds, n_steps, latency = [], {}, {}
    for r in range(rounds):
        items = [f"r{r}i{i}" for i in range(width)]
        all_rounds.append(items)
        for item in items:
            n_steps[item] = steps
            slow = tail_factor if rng.random() < tail_frac else 1.0
            for k in range(1, steps + 1):
                latency[(item, k)] = _lognormal(rng, median) * slow
    orch = [_lognormal(rng, median) for _ in range(rounds + 1)]
    return Workload(name, all_rounds, n_steps, latency, orch)


def wide(n: int = 100, steps: int = 3, median: float = 0.2, seed: int = 1) -> Workload:
    """One fan-out over `n` items (WideSearch-like: search -> open -> extract)."""
    return make("wide", 1, n, steps, median, seed)


def deep(rounds: int = 5, width: int = 4, steps: int = 3, median: float = 0.2,
         seed: int = 2) -> Workload:
    """A chain of `rounds` dependent fan-outs (each round needs the previous results)."""
    return make("deep", rounds, width, steps, median, seed)


def heavy_tail(n: int = 100, steps: int = 3, median: float = 0.2, seed: int = 3) -> Workload:
    """Wide, but 5% of the items take 10x longer (stragglers)."""
    return make("heavy-tail", 1, n, steps, median, seed, tail_frac=0.05)


class RateLimitedError(Exception):
    """A simulated HTTP 429."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after:.3f}s")
        self.retry_after = retry_after


class TokenBucket:
    """A provider-side RPM-style limiter: `rate` requests per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.accepted = 0
        self.rejected = 0

    def try_acquire(self) -> float | None:
        """None if the request is admitted, else the Retry-After in seconds."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.accepted += 1
            return None
        self.rejected += 1
        return (1.0 - self.tokens) / self.rate

    async def serve(self, latency: float) -> tuple[bool, float | None]:
        """Answer one call: (True, None) after `latency`, or (False, Retry-After) at once."""
        retry_after = self.try_acquire()
        if retry_after is not None:
            return False, retry_after
        if latency > 0:
            await asyncio.sleep(latency)
        return True, None

    def capacity(self, median_latency: float) -> float:
        """Best possible steps per second."""
        return self.rate


class ConcurrencyCap:
    """A provider-side concurrency limit (as in per-account caps): at most `cap` calls in
    flight, the others refused at once with 429 and no Retry-After."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.in_flight = 0
        self.accepted = 0
        self.rejected = 0

    async def serve(self, latency: float) -> tuple[bool, float | None]:
        """Answer one call, or refuse it when `cap` calls are already in flight."""
        if self.in_flight >= self.cap:
            self.rejected += 1
            return False, None
        self.in_flight += 1
        try:
            if latency > 0:
                await asyncio.sleep(latency)
        finally:
            self.in_flight -= 1
        self.accepted += 1
        return True, None

    def capacity(self, mean_latency: float) -> float:
        """Best possible steps per second."""
        return self.cap / mean_latency
