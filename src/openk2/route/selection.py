"""Which deployment serves a request: rules pick a group, health and strategy order it.

Routers are thresholds on request features (the spec's RouteLLM lesson), so the rules here
are explicit and ordered: the first whose conditions the request meets names the group.
Within a group, deployments that lack a needed capability or whose context window is too
small are dropped, deployments cooling down are skipped (LiteLLM's trap: with one
deployment per group a primary that is never cooled down costs every request a failed
attempt during an outage, so single deployments cool down too), and the rest are ordered
by the group's strategy (`quality` and `learned` read their eval-derived data once, when
the router starts).
"""

from __future__ import annotations

import collections
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openk2.route.config import Deployment, Group, RouterConfig, Rule
from openk2.route.learned import DEFAULT_THRESHOLD as WIN_THRESHOLD
from openk2.route.learned import LearnedRouter
from openk2.route.quality import DEFAULT_THRESHOLD as QUALITY_THRESHOLD
from openk2.route.quality import QualityTable

CLASS_HEADER = "x-openk2-class"
TAGS_HEADER = "x-openk2-tags"
LATENCY_ALPHA = 0.2
"""Weight of the newest latency in the moving average `least-latency` sorts by."""
LATENCY_TTL_S = 60.0
"""A latency average not refreshed for this long counts as unmeasured (tried first again):
otherwise a deployment that was slow once would never get the request that shows it
recovered."""


@dataclass(frozen=True, slots=True)
class Features:
    """What the rules look at."""

    needs: frozenset[str]
    prompt_tokens: int
    """Estimated (4 characters per token)."""
    model: str
    headers: dict[str, str]
    body: dict[str, Any]
    """The request itself (the learned router reads its text)."""
    tags: frozenset[str] = frozenset()
    """The body's `tags` list and the `x-openk2-tags` header's comma-separated names."""


def features(body: dict[str, Any], headers: dict[str, str]) -> Features:
    """Needed capabilities (tools, image), estimated prompt size, alias, headers."""
    needs = set()
    if body.get("tools"):
        needs.add("tools")
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            needs.add("image")
    size = len(json.dumps(body.get("messages") or [])) // 4
    lowered = {k.lower(): v for k, v in headers.items()}
    return Features(frozenset(needs), size, str(body.get("model") or ""), lowered, body,
                    _tags(body, lowered))


def _tags(body: dict[str, Any], headers: dict[str, str]) -> frozenset[str]:
    listed = body.get("tags")
    tags = {str(t) for t in listed} if isinstance(listed, list) else set()
    tags |= {t.strip() for t in headers.get(TAGS_HEADER, "").split(",") if t.strip()}
    return frozenset(tags)


def matches(rule: Rule, f: Features) -> bool:
    """Does the request meet every condition of the rule?"""
    if not rule.needs <= f.needs:
        return False
    if rule.min_prompt_tokens is not None and f.prompt_tokens < rule.min_prompt_tokens:
        return False
    if rule.model is not None and rule.model != f.model:
        return False
    if not rule.tags <= f.tags:
        return False
    return all(f.headers.get(k) == v for k, v in rule.header.items())


class RouterState:
    """Cooldowns, latency averages and spend, shared by all requests."""

    def __init__(self, cfg: RouterConfig, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = rng or random.Random()
        self.fails: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque)
        self.latency: dict[str, float] = {}
        self.latency_at: dict[str, float] = {}
        self.spend_group: dict[str, float] = collections.defaultdict(float)
        self.spend_deployment: dict[str, float] = collections.defaultdict(float)
        self.quality = {g.name: QualityTable.load(g.report) for g in cfg.groups.values()
                        if g.strategy == "quality" and g.report is not None}
        self.learned = {g.name: LearnedRouter.load(g.model) for g in cfg.groups.values()
                        if g.strategy == "learned" and g.model is not None}

    def group_for(self, f: Features) -> Group:
        """The group that serves the request (see `route_for`)."""
        return self.route_for(f)[0]

    def route_for(self, f: Features) -> tuple[Group, str | None]:
        """The first matching rule's group, else the group the request's `model` names, else
        the default; with the request class (the caller's header, else the rule's)."""
        for rule in self.cfg.rules:
            if matches(rule, f):
                return self.cfg.groups[rule.group], f.headers.get(CLASS_HEADER) or \
                    rule.request_class
        group = self.cfg.groups.get(f.model) or self.cfg.groups[self.cfg.default_group]
        return group, f.headers.get(CLASS_HEADER)

    def over_budget(self, group: Group) -> bool:
        """Has the group spent its cap?"""
        return group.budget_usd is not None and self.spend_group[group.name] >= group.budget_usd

    def cooling(self, name: str) -> bool:
        """Has the deployment failed `allowed_fails` times within the cooldown window?"""
        window = self.fails[name]
        now = self.clock()
        while window and window[0] <= now - self.cfg.cooldown_s:
            window.popleft()
        return len(window) >= self.cfg.allowed_fails

    def candidates(self, group: Group, f: Features, request_class: str | None = None,
                   win_score: float | None = None) -> list[Deployment]:
        """Deployments to try, in order (capable, fitting, not cooling down); `win_score` is
        the learned router's score when the caller computed it (off the event loop)."""
        usable = [self.cfg.deployments[n] for n in group.deployments]
        usable = [d for d in usable if f.needs <= d.capabilities | _implicit(d)
                  and (d.context_window is None or f.prompt_tokens <= d.context_window)
                  and not self.cooling(d.name)]
        if group.strategy == "quality":
            threshold = QUALITY_THRESHOLD if group.threshold is None else group.threshold
            return self.quality[group.name].order(usable, request_class, threshold)
        if group.strategy == "learned":
            threshold = WIN_THRESHOLD if group.threshold is None else group.threshold
            return self.learned[group.name].order(usable, f.body, threshold, win_score)
        return self._order(group.strategy, usable)

    def _order(self, strategy: str, ds: list[Deployment]) -> list[Deployment]:
        if strategy == "cheapest":
            return sorted(ds, key=lambda d: d.blended_price)
        if strategy == "least-latency":
            return sorted(ds, key=self._current_latency)
        if strategy == "shuffle":
            keyed = [(self.rng.random() ** (1.0 / max(d.weight, 1e-9)), d) for d in ds]
            return [d for _, d in sorted(keyed, key=lambda kd: -kd[0])]
        return ds

    def _current_latency(self, d: Deployment) -> float:
        """The moving average, or 0 (try it) when never measured or stale."""
        fresh = self.clock() - self.latency_at.get(d.name, -1e18) < LATENCY_TTL_S
        return self.latency.get(d.name, 0.0) if fresh else 0.0

    def record_failure(self, name: str) -> None:
        """A failure before the first byte (connection, timeout, 429, 5xx)."""
        self.fails[name].append(self.clock())

    def record_success(self, d: Deployment, group: Group, latency_s: float,
                       usage: dict[str, Any] | None) -> float:
        """Update the latency average and spend; returns this response's cost."""
        old = self.latency.get(d.name)
        self.latency_at[d.name] = self.clock()
        self.latency[d.name] = (latency_s if old is None
                                else (1 - LATENCY_ALPHA) * old + LATENCY_ALPHA * latency_s)
        cost = d.cost(usage or {})
        self.spend_group[group.name] += cost
        self.spend_deployment[d.name] += cost
        return cost


def _implicit(d: Deployment) -> frozenset[str]:
    """A deployment that declares no capabilities is assumed to take tools (most do)."""
    return frozenset() if d.capabilities else frozenset({"tools"})
