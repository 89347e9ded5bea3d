"""Prometheus text exposition for /metrics: server counters plus the engine's latest snapshot.

Written by hand (a few dozen lines) instead of pulling in `prometheus_client`: the set of
metrics is small and fixed, and the engine already keeps its own counters.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field

from openk2.engine.outputs import EngineStats

TTFT_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    """Cumulative-bucket histogram in seconds."""

    buckets: tuple[float, ...] = TTFT_BUCKETS_S
    counts: list[int] = field(default_factory=lambda: [0] * (len(TTFT_BUCKETS_S) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1


class ServerMetrics:
    """Request counters and in-flight gauge, updated from request handlers (any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.ttft = Histogram()
        self.disconnects = 0

    def record_request(self, endpoint: str, status: int) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1

    def record_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1

    def record_ttft(self, seconds: float) -> None:
        with self._lock:
            self.ttft.observe(seconds)

    def render(self, stats: EngineStats, model_name: str, in_flight: int) -> str:
        """The whole /metrics page."""
        with self._lock:
            lines = self._server_lines(in_flight)
        lines += _engine_lines(stats)
        label = f'model_name="{_escape(model_name)}"'
        return "\n".join(_label(line, label) for line in lines) + "\n"

    def _server_lines(self, in_flight: int) -> list[str]:
        lines = _header("openk2_requests_total", "counter", "HTTP requests by endpoint and status")
        for (endpoint, status), count in sorted(self.requests.items()):
            labels = f'endpoint="{endpoint}",status="{status}"'
            lines.append(f"openk2_requests_total{{{labels}}} {count}")
        lines += _gauge("openk2_requests_in_flight", "Requests being served now", in_flight)
        lines += _header("openk2_client_disconnects_total", "counter", "Requests the client left")
        lines.append(f"openk2_client_disconnects_total {self.disconnects}")
        lines += _histogram("openk2_time_to_first_token_seconds", "Time to first token", self.ttft)
        return lines


def _engine_lines(s: EngineStats) -> list[str]:
    lines: list[str] = []
    lines += _gauge("openk2_num_requests_running", "Sequences in the running batch", s.num_running)
    lines += _gauge("openk2_num_requests_waiting", "Sequences queued (queue depth)", s.num_waiting)
    lines += _gauge("openk2_batch_size", "Rows in the latest engine step", s.last_batch_size)
    lines += _gauge("openk2_batch_tokens", "Tokens of the latest step", s.last_batch_tokens)
    lines += _gauge("openk2_cache_pages_total", "Latent cache pages", s.num_blocks)
    lines += _gauge("openk2_cache_pages_used", "Pages held by sequences", s.num_used_blocks)
    lines += _gauge("openk2_cache_pages_free", "Pages free or reusable", s.num_free_blocks)
    usage = s.num_used_blocks / s.num_blocks if s.num_blocks else 0.0
    lines += _gauge("openk2_cache_usage_ratio", "Fraction of pages in use", round(usage, 6))
    counters = {
        "openk2_prompt_tokens_total": ("Prompt tokens received", s.prompt_tokens),
        "openk2_generation_tokens_total": ("Tokens generated", s.generation_tokens),
        "openk2_prefix_cache_hit_tokens_total": ("Prompt tokens reused", s.prefix_hit_tokens),
        "openk2_prefix_cache_query_tokens_total": ("Tokens looked up", s.prefix_query_tokens),
        "openk2_preemptions_total": ("Sequences preempted for pages", s.preemptions),
        "openk2_engine_steps_total": ("Engine steps run", s.steps),
        "openk2_sequences_added_total": ("Sequences queued", s.sequences_added),
        "openk2_media_items_total": ("Images and video chunks received", s.media_items),
        "openk2_media_items_encoded_total": (
            "Media items the vision tower ran for (the rest hit the encoder cache)",
            s.media_items_encoded,
        ),
    }
    for name, (help_text, value) in counters.items():
        lines += _header(name, "counter", help_text) + [f"{name} {value}"]
    lines += _header("openk2_sequences_finished_total", "counter", "Finished sequences by reason")
    for reason, count in sorted(s.finished.items()):
        lines.append(f'openk2_sequences_finished_total{{reason="{reason}"}} {count}')
    return lines


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _gauge(name: str, help_text: str, value: float) -> list[str]:
    return [*_header(name, "gauge", help_text), f"{name} {value}"]


def _histogram(name: str, help_text: str, h: Histogram) -> list[str]:
    lines = _header(name, "histogram", help_text)
    running = 0
    for bound, count in zip((*h.buckets, float("inf")), h.counts, strict=True):
        running += count
        le = "+Inf" if bound == float("inf") else repr(bound)
        lines.append(f'{name}_bucket{{le="{le}"}} {running}')
    lines += [f"{name}_sum {h.total:.6f}", f"{name}_count {h.n}"]
    return lines


def _label(line: str, label: str) -> str:
    """Add the model label to a sample line (comments pass through)."""
    if line.startswith("#"):
        return line
    name, _, rest = line.partition(" ")
    if name.endswith("}"):
        return f"{name[:-1]},{label}}} {rest}"
    return f"{name}{{{label}}} {rest}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_metrics(text: str) -> dict[str, float]:
    """Sample name (with labels, minus model_name) -> value; used by tests and benchmarks."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base, _, labels = name.partition("{")
        kept = [p for p in labels.rstrip("}").split(",") if p and not p.startswith("model_name=")]
        out[base + ("{" + ",".join(kept) + "}" if kept else "")] = float(value)
    return out
