"""Start or resume a swarm run against an OpenAI-compatible server (what `openk2 swarm` runs).

A run lives in `RUN_DIR/RUN_ID/`: `events.sqlite` (the durable log), `trace.jsonl` (exported
after every session), `artifacts/` (full outputs that were truncated) and, with the `otel`
extra, `spans.jsonl`. The server address, model and limits are stored in the log so that
`--resume RUN_ID` needs nothing else; the API key is never stored.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openk2.agent.llm.openai_compat import OpenAICompatProvider, RetryPolicy
from openk2.agent.llm.provider import ChatProvider, GenerationSettings
from openk2.agent.loop.events import Wire
from openk2.agent.swarm.accounting import Pricing
from openk2.agent.swarm.budgets import BudgetLimits
from openk2.agent.swarm.remote import RemoteBackend
from openk2.agent.swarm.results import ArtifactStore
from openk2.agent.swarm.runtime import Swarm, SwarmConfig, SwarmOutcome
from openk2.agent.swarm.spec import AgentSpec
from openk2.agent.swarm.state import replay
from openk2.agent.swarm.store import SQLiteEventStore, open_run_store
from openk2.agent.swarm.tracing import OtelSubscriber, export_jsonl, file_tracer, otel_available
from openk2.agent.tools.base import Toolset


@dataclass(kw_only=True, slots=True)
class LaunchOptions:
    """Everything `openk2 swarm` needs to start a run."""

    task: str = ""
    """What the orchestrator should do."""
    base_url: str = ""
    """OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."""
    model: str = ""
    """Model id to request."""
    api_key: str | None = None
    """Bearer token (never written to disk)."""
    run_dir: Path = Path("runs")
    """Where runs are kept."""
    run_id: str | None = None
    """Id of a new run (default: random) or of the run to resume."""
    max_agents: int = 300
    """Sub-agents per run."""
    max_steps: int = 4000
    """LLM steps per run, all agents together."""
    max_tokens: int | None = None
    """Tokens per run."""
    wall_clock_s: float | None = None
    """Seconds per session."""
    agent_max_steps: int = 100
    """Steps per sub-agent invocation."""
    max_concurrency: int = 300
    """Model calls in flight."""
    max_rps: float | None = None
    """Requests per second to the provider, never exceeded (None = learned from 429s)."""
    temperature: float | None = None
    """Sampling temperature (None = server default)."""
    specs: list[AgentSpec] = field(default_factory=list)
    """Predefined sub-agent types."""
    progress: bool = False
    """Show the live view on stderr."""
    otel: bool = True
    """Write OpenTelemetry spans when the SDK is installed."""
    price: list[float] | None = None
    """Dollars per million tokens: [input, output] or [input, output, cached input]."""
    tools: Toolset | None = None
    """Tools every sub-agent may call (e.g. a workspace's); not stored, so give them again
    on resume."""
    backend: str = "local"
    """Where sub-agents run: "local" (this process) or "ray" (Ray tasks; the caller passes
    the `RemoteBackend` to `launch`). Stored, so a resume runs where the run started."""


def _config(opts: LaunchOptions) -> SwarmConfig:
    limits = BudgetLimits(max_steps=opts.max_steps, max_agents=opts.max_agents,
                          max_tokens=opts.max_tokens, wall_clock_s=opts.wall_clock_s)
    settings = GenerationSettings(temperature=opts.temperature)
    pricing = None
    if opts.price:
        cached = opts.price[2] if len(opts.price) > 2 else None
        pricing = Pricing(input_per_mtok=opts.price[0], output_per_mtok=opts.price[1],
                          cached_per_mtok=cached)
    subagent_tools = tuple(opts.tools.names) if opts.tools else ()
    return SwarmConfig(limits=limits, agent_max_steps=opts.agent_max_steps,
                       max_concurrency=opts.max_concurrency, settings=settings, pricing=pricing,
                       subagent_tools=subagent_tools, max_rps=opts.max_rps)


def _meta(opts: LaunchOptions) -> dict[str, Any]:
    keep = ("base_url", "model", "max_agents", "max_steps", "max_tokens", "wall_clock_s",
            "agent_max_steps", "max_concurrency", "temperature", "price", "max_rps", "backend")
    return {k: getattr(opts, k) for k in keep}


def options_for_resume(run_dir: Path, run_id: str, api_key: str | None) -> LaunchOptions:
    """Rebuild a run's options from its log (the API key comes from the caller)."""
    store = open_run_store(run_dir, run_id, must_exist=True)
    try:
        state = replay(run_id, store.events())
    finally:
        store.close()
    if not state.meta:
        raise ValueError(f"run {run_id!r} has no start event; it cannot be resumed")
    opts = LaunchOptions(run_dir=run_dir, run_id=run_id, api_key=api_key)
    for key, value in state.meta.items():
        if hasattr(opts, key):
            setattr(opts, key, value)
    return opts


def http_provider(opts: LaunchOptions) -> OpenAICompatProvider:
    """The HTTP provider; 429s are left to the swarm's AIMD scheduler, except on a remote
    backend, whose workers' calls that scheduler never sees (they retry 429s themselves)."""
    return OpenAICompatProvider(opts.base_url, opts.model, opts.api_key,
                                retry=RetryPolicy(retry_rate_limits=opts.backend != "local"),
                                max_connections=opts.max_concurrency)


async def launch(
    opts: LaunchOptions, *, resume: bool = False, provider: ChatProvider | None = None,
    backend: RemoteBackend | None = None, wire: Wire | None = None,
) -> SwarmOutcome:
    """Start (or resume) a run and return its outcome; the log is left on disk. With
    `backend`, sub-agents run there (e.g. `ray_backend.RayBackend`); pass `wire` to watch
    the run's events (the web app streams them to its page)."""
    run_id = opts.run_id or uuid.uuid4().hex[:12]
    folder = opts.run_dir / run_id
    if not resume and (folder / "events.sqlite").exists():
        raise FileExistsError(f"run {run_id!r} already exists in {opts.run_dir}; use --resume")
    store = open_run_store(opts.run_dir, run_id, must_exist=resume)
    own_provider = provider is None
    provider = provider or http_provider(opts)
    wire = wire or Wire()
    swarm = _build(opts, provider, store, wire, run_id, folder, resume, backend)
    try:
        with _observers(opts, swarm, wire, folder, run_id):
            return await swarm.run(opts.task)
    finally:
        await store.sync()
        export_jsonl(store, folder / "trace.jsonl")
        store.close()
        if own_provider:
            await provider.aclose()  # type: ignore[attr-defined]


def _build(opts: LaunchOptions, provider: ChatProvider, store: SQLiteEventStore, wire: Wire,
           run_id: str, folder: Path, resume: bool, backend: RemoteBackend | None) -> Swarm:
    kw: dict[str, Any] = {"config": _config(opts), "wire": wire, "specs": opts.specs,
                          "artifacts": ArtifactStore(folder / "artifacts"), "tools": opts.tools,
                          "backend": backend}
    if resume:
        return Swarm.restore(provider, store, run_id, **kw)
    swarm = Swarm(provider, store=store, run_id=run_id, **kw)
    swarm.state.meta = _meta(opts)
    return swarm


@contextlib.contextmanager
def _observers(opts: LaunchOptions, swarm: Swarm, wire: Wire, folder: Path, run_id: str) -> Any:
    with contextlib.ExitStack() as stack:
        if opts.otel and otel_available():
            tracer, tracer_provider = file_tracer(folder / "spans.jsonl")
            otel = OtelSubscriber(tracer, run_id)
            wire.subscribe(otel)
            stack.callback(tracer_provider.shutdown)
            stack.callback(otel.close)
        if opts.progress:
            from openk2.agent.swarm.progress import SwarmProgress

            view = SwarmProgress(run_id, swarm.config.limits.max_steps)
            wire.subscribe(view)
            stack.enter_context(view)
        yield
