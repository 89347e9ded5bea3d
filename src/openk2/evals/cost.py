"""`openk2 cost`: monthly cost of self-hosting vs APIs, the crossover, the throughput it needs.

The arithmetic (shared/spec/eval-route-cost.md section 3.3), per request of I input tokens
(a share h of them cache hits) and O output tokens:
- API: `A = [I(1-h)p_in + I h p_cached + O p_out] / 1e6` dollars per request, `API(Q) = A Q`;
- self-hosting: a node costs `c = N_gpu x P` $/h, ops `F` $/month, and serves
  `R_max = T_out / O` requests/s at its measured output throughput `T_out`; at utilisation
  `u` one node carries `R_max u 2.628e6` requests a month, so
  `Self(Q) = ceil(Q / that) x 730 c + F`;
- break-even `Q* = (730 c + F) / A`, reachable only if the node sustains
  `Q* / (2.628e6 u)` requests/s (`c / (3600 A u)` without ops costs), times O in output tok/s.

Utilisation is the lever (spec section 3.4), so the report repeats the numbers that depend
on it at several levels (`utilization_bands`, 20/40/60/80% by default), and with a measured
throughput it gives the break-even utilisation `u* = Q* / (R_max 2.628e6)`: the average
load below which one node costs more than the API would for the same traffic.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
DEFAULT_BANDS = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True, kw_only=True, slots=True)
class Mix:
    """The average request."""

    input_tokens: float = 8000.0
    """Prompt tokens per request."""
    output_tokens: float = 1000.0
    """Completion tokens per request."""
    cache_hit: float = 0.5
    """Share of prompt tokens served from the provider's prompt cache."""

    def __post_init__(self) -> None:
        if self.input_tokens < 0 or self.output_tokens <= 0 or not 0 <= self.cache_hit <= 1:
            raise ValueError("need input >= 0, output > 0 tokens and 0 <= cache_hit <= 1")

    @property
    def tokens(self) -> float:
        """Tokens per request, in and out."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiPrice:
    """One API's prices per 1M tokens, with where they come from."""

    name: str
    input: float
    output: float
    cached: float | None = None
    source: str = ""
    as_of: str = ""
    tag: str = ""

    def per_request(self, mix: Mix) -> float:
        """Dollars for one request of `mix` (cache hits at the uncached price if none)."""
        cached = self.input if self.cached is None else self.cached
        prompt = mix.input_tokens * ((1 - mix.cache_hit) * self.input + mix.cache_hit * cached)
        return (prompt + mix.output_tokens * self.output) / 1e6


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    """The self-hosted node."""

    gpus: int
    gpu_hour: float
    """$ per GPU-hour."""
    ops_month: float = 0.0
    """Fixed $ per month on top (egress, storage, people)."""
    output_tok_s: float | None = None
    """Measured output throughput at the latency SLO (None = unknown)."""
    utilization: float = 1.0
    """Average share of capacity actually used."""

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.gpu_hour < 0 or self.ops_month < 0:
            raise ValueError("need gpus >= 1 and non-negative prices")
        if not 0 < self.utilization <= 1:
            raise ValueError(f"utilization must be in (0, 1], got {self.utilization}")
        if self.output_tok_s is not None and self.output_tok_s <= 0:
            raise ValueError("throughput must be > 0")

    @property
    def per_hour(self) -> float:
        """c: the node's $ per hour."""
        return self.gpus * self.gpu_hour

    def month_capacity(self, mix: Mix) -> float | None:
        """Requests one node carries per month at its utilisation (None if unknown)."""
        if self.output_tok_s is None:
            return None
        return self.output_tok_s / mix.output_tokens * self.utilization * SECONDS_PER_MONTH

    def monthly(self, requests: float, mix: Mix) -> float:
        """Self(Q): whole nodes for `requests` a month (one if the capacity is unknown)."""
        cap = self.month_capacity(mix)
        nodes = 1 if cap is None else max(1, math.ceil(requests / cap))
        return nodes * HOURS_PER_MONTH * self.per_hour + self.ops_month


def crossover(api: ApiPrice, node: Node, mix: Mix) -> dict[str, Any]:
    """Break-even volume against one API and what the node must sustain to reach it."""
    a = api.per_request(mix)
    fixed = HOURS_PER_MONTH * node.per_hour + node.ops_month
    q_star = fixed / a
    req_s = q_star / (SECONDS_PER_MONTH * node.utilization)  # = c / (3600 A u) when F = 0
    cap = node.month_capacity(mix)
    out: dict[str, Any] = {
        "api": api.name, "usd_per_request": a, "break_even_requests_month": q_star,
        "break_even_tokens_month": q_star * mix.tokens,
        "break_even_avg_req_s": q_star / SECONDS_PER_MONTH,
        "required_output_tok_s": req_s * mix.output_tokens,
        "source": api.source, "as_of": api.as_of, "tag": api.tag,
    }
    if cap is not None:
        out["feasible_on_one_node"] = q_star <= cap
        out["crossover_requests_month"] = _staircase_crossover(a, node, mix, cap)
        out["break_even_utilization"] = q_star / (cap / node.utilization)
    return out


def utilization_bands(apis: list[ApiPrice], node: Node, mix: Mix,
                      levels: tuple[float, ...] = DEFAULT_BANDS) -> list[dict[str, Any]]:
    """What changes with utilisation, at each level: the node's monthly capacity and $/1M
    output, and per API the output tok/s needed to break even and the crossover volume."""
    bands = []
    for u in levels:
        at = dataclasses.replace(node, utilization=u)
        per_api = {}
        for api in apis:
            row = crossover(api, at, mix)
            per_api[api.name] = {k: row[k] for k in (
                "required_output_tok_s", "feasible_on_one_node", "crossover_requests_month")
                if k in row}
        bands.append({"utilization": u, "capacity_requests_month": at.month_capacity(mix),
                      "usd_per_1m_output": self_host_per_million_output(at), "apis": per_api})
    return bands


def _staircase_crossover(a: float, node: Node, mix: Mix, cap: float) -> float | None:
    """Smallest volume where whole nodes cost no more than the API (None: never).

    With k nodes (volumes in ((k-1) cap, k cap]) self-hosting wins from
    `(k x 730 c + F) / a`; that lies in the segment iff `k (a cap - 730 c) >= F`.
    """
    margin = a * cap - HOURS_PER_MONTH * node.per_hour
    if margin < 0 or (margin == 0 and node.ops_month > 0):
        return None
    k = 1 if margin == 0 else max(1, math.ceil(node.ops_month / margin))
    return max((k - 1) * cap, (k * HOURS_PER_MONTH * node.per_hour + node.ops_month) / a)


def self_host_per_million_output(node: Node) -> float | None:
    """$ per 1M output tokens at the node's throughput and utilisation."""
    if node.output_tok_s is None:
        return None
    return node.per_hour / (node.utilization * node.output_tok_s * 3600) * 1e6


def load_prices() -> dict[str, Any]:
    """The dated price file shipped in the package."""
    text = resources.files("openk2.evals").joinpath("data/prices.json").read_text()
    return json.loads(text)


def api_price(name: str, prices: dict[str, Any] | None = None) -> ApiPrice:
    """One API's prices from the data file; unknown or incomplete rows are errors."""
    table = (prices or load_prices())["apis"]
    if name not in table:
        raise ValueError(f"no price for {name!r}; known: {', '.join(table)}")
    row = table[name]
    if row.get("in") is None or row.get("out") is None:
        raise ValueError(f"{name}: price row is incomplete ({row.get('source')})")
    return ApiPrice(name=name, input=row["in"], output=row["out"], cached=row.get("cached"),
                    source=row.get("source", ""), as_of=row.get("as_of", ""),
                    tag=row.get("tag", ""))


def cost_report(apis: list[ApiPrice], node: Node, mix: Mix,
                volume_requests: float | None = None,
                bands: tuple[float, ...] = DEFAULT_BANDS) -> dict[str, Any]:
    """Everything `openk2 cost --json` prints."""
    volume = volume_requests if volume_requests is not None else node.month_capacity(mix)
    rows = []
    for api in apis:
        row = crossover(api, node, mix)
        if volume is not None:
            row["api_monthly_usd"] = api.per_request(mix) * volume
        rows.append(row)
    return {
        "mix": {"input_tokens": mix.input_tokens, "output_tokens": mix.output_tokens,
                "cache_hit": mix.cache_hit},
        "node": {"gpus": node.gpus, "gpu_hour": node.gpu_hour, "usd_per_hour": node.per_hour,
                 "ops_month": node.ops_month, "output_tok_s": node.output_tok_s,
                 "utilization": node.utilization,
                 "capacity_requests_month": node.month_capacity(mix),
                 "usd_per_1m_output": self_host_per_million_output(node)},
        "volume_requests_month": volume,
        "self_host_monthly_usd": None if volume is None else node.monthly(volume, mix),
        "apis": rows,
        "utilization_bands": utilization_bands(apis, node, mix, bands),
    }
