"""The router's YAML: deployments, groups (with a strategy and a budget) and ordered rules.

```yaml
deployments:
  - {name: k2-api, url: https://api.example/v1, model: kimi-k2.6, key: KIMI_KEY,
     price_in: 0.95, price_out: 4.0, capabilities: [tools], context_window: 262144}
  - {name: local, url: http://127.0.0.1:8000/v1, model: openk2-embedded, weight: 2}
groups:
  default: {deployments: [local, k2-api], strategy: shuffle, budget_usd: 50}
  mixed: {deployments: [local, k2-api], strategy: quality, report: evals/report.json,
          threshold: 0.9}             # cheapest deployment whose eval pass@1 clears 0.9
  learned: {deployments: [local, k2-api], strategy: learned, model: router.json}
rules:
  - {when: {needs: [tools]}, group: mixed, class: tool-calls}   # class = eval suite
  - {when: {tags: [batch]}, group: default}     # body `tags: [batch]` or x-openk2-tags header
default_group: default
keys:                                  # callers' keys; absent: the proxy is open
  - {name: team-a, env: TEAM_A_KEY, budget_usd: 5}
```
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STRATEGIES = ("shuffle", "least-latency", "cheapest", "ordered", "quality", "learned")


@dataclass(frozen=True, kw_only=True, slots=True)
class Deployment:
    """One upstream: where it is, what it costs, what it can do."""

    name: str
    url: str
    """Base URL before `/chat/completions`."""
    model: str
    """Model id sent upstream (the client's `model` is replaced)."""
    key: str | None = None
    """Environment variable with the bearer key."""
    price_in: float = 0.0
    """$ per 1M uncached prompt tokens."""
    price_out: float = 0.0
    """$ per 1M completion tokens."""
    price_cached: float | None = None
    """$ per 1M cached prompt tokens (default: price_in)."""
    capabilities: frozenset[str] = frozenset()
    """Features requests may need: tools, image, ..."""
    context_window: int | None = None
    """Longest prompt (estimated tokens) it accepts."""
    weight: float = 1.0
    """Share of traffic under the `shuffle` strategy."""
    eval_name: str | None = None
    """Its endpoint name in `openk2 eval` results (default: the deployment's name)."""

    def cost(self, usage: dict[str, Any]) -> float:
        """Dollars for one response's `usage`."""
        prompt = int(usage.get("prompt_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        cached = int(details.get("cached_tokens", usage.get("cached_tokens", 0)) or 0)
        cached_price = self.price_in if self.price_cached is None else self.price_cached
        total = (prompt - cached) * self.price_in + cached * cached_price
        return (total + int(usage.get("completion_tokens") or 0) * self.price_out) / 1e6

    def headers(self) -> dict[str, str]:
        """Upstream headers (the bearer key from the environment, if any)."""
        if self.key is None:
            return {}
        value = os.environ.get(self.key)
        if value is None:
            raise ValueError(f"deployment {self.name!r}: environment variable {self.key} unset")
        return {"Authorization": f"Bearer {value}"}

    @property
    def measured_as(self) -> str:
        """The endpoint name eval results know it by."""
        return self.eval_name or self.name

    @property
    def blended_price(self) -> float:
        """What the `cheapest` strategy sorts by."""
        return self.price_in + self.price_out


@dataclass(frozen=True, kw_only=True, slots=True)
class Group:
    """Deployments that serve the same requests, and how to choose among them."""

    name: str
    deployments: tuple[str, ...]
    strategy: str = "shuffle"
    budget_usd: float | None = None
    """Spend cap; once reached the group answers 429."""
    report: Path | None = None
    """`quality`: the `openk2 eval` report.json with each deployment's pass@1 per suite."""
    model: Path | None = None
    """`learned`: the router model written by `openk2 route-train`."""
    threshold: float | None = None
    """`quality`: the pass@1 a deployment must reach (0.9); `learned`: the predicted chance
    that the weak deployment answers right above which it is chosen (0.5)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """Send matching requests to `group`; empty conditions match everything."""

    group: str
    needs: frozenset[str] = frozenset()
    """Capabilities the request must need (tools, image)."""
    min_prompt_tokens: int | None = None
    model: str | None = None
    """The request's `model` field (an alias)."""
    header: dict[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    """Tags the request must carry (body `tags: [..]` or header `x-openk2-tags: a,b`)."""
    request_class: str | None = None
    """The class (eval suite) matching requests belong to, for the `quality` strategy."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CallerKey:
    """A key callers may present; its value lives in an environment variable."""

    name: str
    env: str
    budget_usd: float | None = None
    """Spend cap of this caller; once reached its requests get 429."""

    def value(self) -> str:
        """The key itself (read when the router starts)."""
        value = os.environ.get(self.env)
        if not value:
            raise ValueError(f"caller key {self.name!r}: environment variable {self.env} unset")
        return value


@dataclass(frozen=True, kw_only=True, slots=True)
class RouterConfig:
    deployments: dict[str, Deployment]
    groups: dict[str, Group]
    rules: tuple[Rule, ...]
    default_group: str
    allowed_fails: int = 1
    """Failures of a deployment within `cooldown_s` before it is skipped."""
    cooldown_s: float = 30.0
    """How long failures count against a deployment."""
    timeout_s: float = 600.0
    """Longest wait for an upstream's first byte or between two bytes (a hang is a failure)."""
    log_path: Path | None = None
    """JSONL decision log (one line per request)."""
    keys: tuple[CallerKey, ...] = ()
    """Callers' keys; empty: no key is asked for."""

    def __post_init__(self) -> None:
        for group in self.groups.values():
            _check_strategy_inputs(group)
            missing = [d for d in group.deployments if d not in self.deployments]
            if missing or not group.deployments:
                raise ValueError(f"group {group.name!r}: unknown or no deployments {missing}")
            if group.strategy not in STRATEGIES:
                raise ValueError(f"group {group.name!r}: strategy must be one of {STRATEGIES}")
        for target in [r.group for r in self.rules] + [self.default_group]:
            if target not in self.groups:
                raise ValueError(f"unknown group {target!r}")


def load_config(path: Path) -> RouterConfig:
    """Parse the YAML file (or TOML, by its `.toml` suffix: the same keys); every error names
    the field. Relative paths in it (log, report, model) are relative to the file."""
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {exc}") from exc
    else:
        data = yaml.safe_load(path.read_text()) or {}
    return parse_config(data, base=path.parent)


def parse_config(data: dict[str, Any], base: Path = Path(".")) -> RouterConfig:
    """Build a config from parsed YAML/JSON."""
    deployments = {d["name"]: _deployment(d) for d in data.get("deployments") or []}
    if not deployments:
        raise ValueError("route config: no deployments")
    groups_in = data.get("groups") or {"default": {"deployments": list(deployments)}}
    groups = {n: _group(n, g, base) for n, g in groups_in.items()}
    rules = tuple(_rule(r) for r in data.get("rules") or [])
    log = data.get("log")
    return RouterConfig(
        deployments=deployments, groups=groups, rules=rules,
        default_group=data.get("default_group", next(iter(groups))),
        allowed_fails=int(data.get("allowed_fails", 1)),
        cooldown_s=float(data.get("cooldown_s", 30.0)),
        timeout_s=float(data.get("timeout_s", 600.0)),
        log_path=None if log is None else base / log,
        keys=tuple(CallerKey(name=k["name"], env=k["env"], budget_usd=k.get("budget_usd"))
                   for k in data.get("keys") or []),
    )


def _group(name: str, g: dict[str, Any], base: Path) -> Group:
    known = {"deployments", "strategy", "budget_usd", "report", "model", "threshold"}
    unknown = set(g) - known
    if unknown:
        raise ValueError(f"group {name!r}: unknown fields {sorted(unknown)}")
    return Group(name=name, deployments=tuple(g["deployments"]),
                 strategy=g.get("strategy", "shuffle"), budget_usd=g.get("budget_usd"),
                 report=None if g.get("report") is None else base / g["report"],
                 model=None if g.get("model") is None else base / g["model"],
                 threshold=None if g.get("threshold") is None else float(g["threshold"]))


def _check_strategy_inputs(group: Group) -> None:
    """`quality` needs an eval report and `learned` a trained model: said at load time."""
    if group.strategy == "quality" and group.report is None:
        raise ValueError(f"group {group.name!r}: strategy quality needs `report:` "
                         "(an openk2 eval report.json)")
    if group.strategy == "learned" and group.model is None:
        raise ValueError(f"group {group.name!r}: strategy learned needs `model:` "
                         "(written by openk2 route-train)")


def _deployment(d: dict[str, Any]) -> Deployment:
    known = {"name", "url", "model", "key", "price_in", "price_out", "price_cached",
             "capabilities", "context_window", "weight", "eval_name"}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"deployment {d.get('name')!r}: unknown fields {sorted(unknown)}")
    if not str(d.get("url", "")).startswith(("http://", "https://")):
        raise ValueError(f"deployment {d.get('name')!r}: url must be http(s)")
    return Deployment(
        name=d["name"], url=str(d["url"]).rstrip("/"), model=d.get("model", "default"),
        key=d.get("key"), price_in=float(d.get("price_in", 0)),
        price_out=float(d.get("price_out", 0)), price_cached=d.get("price_cached"),
        capabilities=frozenset(d.get("capabilities") or ()),
        context_window=d.get("context_window"), weight=float(d.get("weight", 1)),
        eval_name=d.get("eval_name"))


_WHEN = {"needs", "min_prompt_tokens", "model", "header", "tags"}


def _rule(r: dict[str, Any]) -> Rule:
    when = r.get("when") or {}
    unknown = set(when) - _WHEN
    if unknown:  # a misspelt condition would otherwise match every request
        raise ValueError(f"rule for group {r.get('group')!r}: unknown conditions "
                         f"{sorted(unknown)} (known: {sorted(_WHEN)})")
    return Rule(group=r["group"], needs=frozenset(when.get("needs") or ()),
                min_prompt_tokens=when.get("min_prompt_tokens"), model=when.get("model"),
                header={k.lower(): str(v) for k, v in (when.get("header") or {}).items()},
                tags=frozenset(str(t) for t in when.get("tags") or ()),
                request_class=r.get("class"))
