"""OpenTelemetry spans and the JSONL trace of a swarm run."""

from __future__ import annotations

import json

import pytest
from swarm_scripts import echo_worker, fan_out, route

from openk2.agent.llm.scripted import ScriptedProvider
from openk2.agent.loop.events import Wire
from openk2.agent.swarm import Swarm
from openk2.agent.swarm.tracing import OtelSubscriber, export_jsonl


async def test_spans_nest_run_agent_step(tmp_path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    wire = Wire()
    otel = OtelSubscriber(provider.get_tracer("test"), "run-x")
    wire.subscribe(otel)
    swarm = Swarm(ScriptedProvider(route(fan_out(["a", "b"]), echo_worker())), wire=wire)
    await swarm.run("Two.")
    otel.close()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    root, agent = spans["swarm.run"], spans["agent worker"]
    assert agent.parent.span_id == root.context.span_id
    steps = [s for s in by_id.values() if s.name == "step 1"]
    assert {by_id[s.parent.span_id].name for s in steps} == {"swarm.run", "agent worker"}
    assert any(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in steps)

    lines = export_jsonl(swarm.store, tmp_path / "trace.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert lines == len(rows) and rows[0]["kind"] == "run" and rows[-1]["kind"] == "final"
