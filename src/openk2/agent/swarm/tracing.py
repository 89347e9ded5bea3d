"""Observability: JSONL trace export of a run's log, and OpenTelemetry spans from the wire.

The JSONL trace is the event log itself, one object per line, so it can be diffed, grepped or
loaded into any analysis tool. OpenTelemetry is optional (extra `otel`): one span per agent
invocation, children under their parent's span, one span per step under its agent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openk2.agent.loop.events import (
    AgentFinished,
    AgentSpawned,
    Event,
    RateLimited,
    StepBegin,
    StepEnd,
    ToolCallFinished,
)
from openk2.agent.swarm.store import EventStore


def export_jsonl(store: EventStore, path: Path) -> int:
    """Write every logged event to `path` as JSON lines; returns the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for ev in store.events():
            row = {"seq": ev.seq, "ts": ev.ts, "agent_id": ev.agent_id, "kind": ev.kind,
                   "step": ev.step, "data": ev.data}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def otel_available() -> bool:
    """Whether the OpenTelemetry SDK is installed."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


class OtelSubscriber:
    """Turns wire events into OpenTelemetry spans (agent → step), parented like the swarm."""

    def __init__(self, tracer: Any, run_id: str) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._root = tracer.start_span("swarm.run", attributes={"openk2.run_id": run_id})
        self._agents: dict[str, Any] = {"main": self._root}
        self._steps: dict[str, Any] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, AgentSpawned):
            parent = self._agents.get(event.parent_id or "main", self._root)
            self._agents[event.agent_id] = self._tracer.start_span(
                f"agent {event.name}", context=self._trace.set_span_in_context(parent),
                attributes={"openk2.agent_id": event.agent_id, "openk2.agent_name": event.name})
        elif isinstance(event, StepBegin):
            parent = self._agents.get(event.agent_id, self._root)
            self._steps[event.agent_id] = self._tracer.start_span(
                f"step {event.step}", context=self._trace.set_span_in_context(parent),
                attributes={"openk2.agent_id": event.agent_id, "openk2.step": event.step})
        else:
            self._on_other(event)

    def _on_other(self, event: Event) -> None:
        if isinstance(event, StepEnd):
            span = self._steps.pop(event.agent_id, None)
            if span is not None:
                span.set_attribute("gen_ai.usage.input_tokens", event.usage.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", event.usage.completion_tokens)
                span.set_attribute("openk2.tool_calls", len(event.message.tool_calls))
                span.end()
        elif isinstance(event, ToolCallFinished):
            span = self._steps.get(event.agent_id)
            if span is not None:
                span.add_event("tool", {"name": event.call.name, "call_id": event.call.id})
        elif isinstance(event, RateLimited):
            span = self._steps.get(event.agent_id) or self._root
            span.add_event("rate_limited", {"delay_s": event.delay, "limit": event.limit})
        elif isinstance(event, AgentFinished):
            span = self._agents.pop(event.agent_id, None)
            if span is not None:
                span.set_attribute("openk2.state", event.state)
                span.set_attribute("openk2.steps", event.steps)
                span.end()

    def close(self) -> None:
        """End every open span (the run is over)."""
        for span in [*self._steps.values(), *self._agents.values()]:
            if span is not self._root:
                span.end()
        self._root.end()


def file_tracer(path: Path) -> tuple[Any, Any]:
    """An SDK tracer whose spans go to `path` as JSON lines; returns (tracer, provider)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class _JsonlExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            with path.open("a", encoding="utf-8") as f:
                for span in spans:
                    f.write(json.dumps(json.loads(span.to_json())) + "\n")
            return SpanExportResult.SUCCESS

    path.parent.mkdir(parents=True, exist_ok=True)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_JsonlExporter()))
    return provider.get_tracer("openk2.swarm"), provider
