"""The swarm runtime: an orchestrator agent that spawns isolated sub-agents.

Each sub-agent is a supervisor boundary: whatever happens inside it (a provider error, a bug
in a tool, a hang, a spent budget) becomes a `SubagentResult` with state completed, failed or
aborted, and its siblings keep running. Every step is logged before the next begins, so a run
killed at any point is resumed by `Swarm.restore(...)` + `run()` without repeating logged
steps. Budgets are reserved before each step and spawn (see `budgets.py`), model calls go
through the AIMD scheduler (`scheduler.py`).

Where a kill -9 can cut the log (`store.py` commits in groups) and what resume does there:
- before `run`: nothing to resume (`restore` says so); start the run again.
- an agent spawned or resumed, no `llm` row yet: its first LLM call is made (never made
  durably before, so not a redo).
- an `llm` row with tool calls, some `tool` rows missing: only the calls without a logged
  result run again (at-least-once for them; the swarm's own tools are idempotent through the
  spawn keys, other side-effecting tools must be too); logged results are reused.
- a swarm tool's sub-agents partly spawned: the re-run call finds the spawned ones by key
  (finished ones return their logged result) and spawns only the missing ones, with the
  same ids.
- an `llm` row ending in an answer (no tool calls), its `done` (or `final`) missing: the
  agent is finished; `AgentRunner` returns that answer without calling the model and the
  completion is recorded now.
- `done` logged, the parent's `tool` row missing: the parent's call is re-run and gets the
  logged result back, rendered again (no sub-agent runs).
- `final` logged: `run()` returns the outcome.
Not restored: the loop guard's count of repeated steps and the stall watchdog start afresh.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from openk2.agent.llm.message import Usage
from openk2.agent.llm.provider import ChatProvider, ProviderError
from openk2.agent.loop.events import AgentFinished, AgentSpawned, Wire
from openk2.agent.loop.runner import (
    AgentRunner,
    MaxStepsReachedError,
    TurnOutcome,
    final_answer,
)
from openk2.agent.swarm.accounting import account
from openk2.agent.swarm.budgets import Budget, BudgetExceededError
from openk2.agent.swarm.config import SwarmConfig, SwarmOutcome
from openk2.agent.swarm.hooks import StalledError, SwarmHooks
from openk2.agent.swarm.pacing import RatePacer
from openk2.agent.swarm.prompts import ORCHESTRATOR_PROMPT
from openk2.agent.swarm.remote import RemoteBackend, RemoteJob, RemoteReport
from openk2.agent.swarm.results import ArtifactStore, SubagentResult
from openk2.agent.swarm.scheduler import (
    AdaptiveLimiter,
    ScheduledProvider,
    current_agent,
)
from openk2.agent.swarm.spec import AgentSpec
from openk2.agent.swarm.state import MAIN, AgentRecord, RunState, apply_event, replay
from openk2.agent.swarm.store import EventStore, MemoryEventStore, StoredEvent
from openk2.agent.swarm.tools import swarm_tools
from openk2.agent.tools.base import ToolError, ToolOk, ToolResult, Toolset


class Swarm:
    """One run of an orchestrator and its sub-agents."""

    def __init__(
        self,
        provider: ChatProvider,
        *,
        config: SwarmConfig | None = None,
        tools: Toolset | None = None,
        orchestrator_tools: Sequence[str] = (),
        specs: Sequence[AgentSpec] = (),
        providers: Mapping[str, ChatProvider] | None = None,
        store: EventStore | None = None,
        wire: Wire | None = None,
        artifacts: ArtifactStore | None = None,
        run_id: str | None = None,
        state: RunState | None = None,
        backend: RemoteBackend | None = None,
    ) -> None:
        self.config = config or SwarmConfig()
        self.store: EventStore = store or MemoryEventStore()
        self.wire = wire
        self.artifacts = artifacts or ArtifactStore()
        self.state = state or RunState(run_id or uuid.uuid4().hex[:12])
        self.registry = tools or Toolset()
        self._orchestrator_tools = list(orchestrator_tools)
        self.budget = Budget(self.config.limits)
        self._ledger: list[StoredEvent] = []
        self._global_slots = asyncio.Semaphore(self.config.max_concurrency)
        self.backend = backend
        self._raw_providers = {"default": provider, **(providers or {})}
        self._providers = {k: self._schedule(p) for k, p in self._raw_providers.items()}
        unknown = [t for t in self.config.subagent_tools if t not in self.registry]
        if unknown:
            raise ValueError(f"subagent_tools names unregistered tools {unknown}; "
                             f"registered: {self.registry.names}")
        for spec in specs:
            if spec.provider is not None and spec.provider not in self._providers:
                raise ValueError(f"agent type {spec.name!r} names unknown provider "
                                 f"{spec.provider!r}; known: {sorted(self._providers)}")
            missing = [t for t in spec.tools if t not in self.registry]
            if missing:
                raise ValueError(f"agent type {spec.name!r} names unknown tools {missing}; "
                                 f"registered: {self.registry.names}")
            self.state.specs.setdefault(spec.name, spec)
        self._restore_budget()

    @classmethod
    def restore(cls, provider: ChatProvider, store: EventStore, run_id: str, **kw: Any) -> Swarm:
        """A swarm rebuilt from `store`'s log, ready to `run()` again."""
        events = list(store.events())
        state = replay(run_id, events)
        if MAIN not in state.agents:
            raise ValueError(f"run {run_id!r} has no start event; nothing to resume")
        swarm = cls(provider, store=store, state=state, run_id=run_id, **kw)
        swarm._ledger = [ev for ev in events if ev.kind in _LEDGER_KINDS]
        return swarm

    def log(self, agent_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Append an event to the durable log (and to the in-memory accounting ledger)."""
        self.store.append(agent_id, kind, step, data)
        if kind in _LEDGER_KINDS:
            light = {k: data[k] for k in ("parent", "parent_step", "usage") if k in data}
            self._ledger.append(StoredEvent(0, agent_id, kind, step, light, 0.0))

    def _schedule(self, provider: ChatProvider) -> ScheduledProvider:
        cfg = self.config
        limit = cfg.provider_concurrency or cfg.max_concurrency
        pacing = cfg.pacing
        if cfg.max_rps is not None:
            pacing = dataclasses.replace(pacing, max_rate=cfg.max_rps)
        return ScheduledProvider(provider, AdaptiveLimiter(limit), pacer=RatePacer(pacing),
                                 global_slots=self._global_slots, backoff=cfg.backoff,
                                 wire=self.wire)

    def _restore_budget(self) -> None:
        subs = [r for r in self.state.agents.values() if r.agent_id != MAIN]
        self.budget.steps = sum(r.steps for r in self.state.agents.values())
        self.budget.agents = len(subs)
        self.budget.usage = sum((r.usage for r in self.state.agents.values()), Usage())

    @property
    def rate_limited(self) -> int:
        """429 responses absorbed by the scheduler so far."""
        return sum(p.rate_limited for p in self._providers.values())

    # ---- the orchestrator -------------------------------------------------------------

    async def run(
        self, task: str = "", *, system_prompt: str = ORCHESTRATOR_PROMPT
    ) -> SwarmOutcome:
        """Run (or, after `restore`, continue) the orchestrator until it answers."""
        if self.state.final is not None:
            return self.outcome()
        if MAIN not in self.state.agents:
            self._start(task, system_prompt)
        main = self.state.agents[MAIN]
        tools = self._orchestrator_toolset()
        runner = self._runner(main, tools, self.config.orchestrator_max_steps)
        token = current_agent.set(MAIN)
        try:
            async with asyncio.timeout(self.budget.seconds_left()):
                outcome = await runner.run()
            self._finish("completed", outcome.text, None)
        except (BudgetExceededError, MaxStepsReachedError, TimeoutError) as exc:
            self._finish("aborted", _last_text(runner), _describe(exc))
        except ProviderError as exc:
            self._finish("failed", _last_text(runner), _describe(exc))
        finally:
            current_agent.reset(token)
        await self.store.sync()
        return self.outcome()

    def _start(self, task: str, system_prompt: str) -> None:
        if not task.strip():
            raise ValueError("the swarm needs a non-empty task")
        data = {"task": task, "system_prompt": system_prompt, "meta": self.state.meta}
        self.log(MAIN, "run", 0, data)
        apply_event(self.state, StoredEvent(0, MAIN, "run", 0, data, 0.0))
        for spec in self.state.specs.values():
            self.log(MAIN, "spec", 0, spec.to_dict())

    def _finish(self, state: str, answer: str, error: str | None) -> None:
        self.state.final = {"state": state, "answer": answer, "error": error}
        self.log(MAIN, "final", self.state.agents[MAIN].steps, self.state.final)

    def outcome(self) -> SwarmOutcome:
        """The run's outcome (final if the run ended, else as of now)."""
        final = self.state.final or {"state": "running", "answer": "", "error": None}
        results = [r.result or _unfinished(r) for r in self.state.agents.values()
                   if r.agent_id != MAIN]
        return SwarmOutcome(self.state.run_id, final["state"], final["answer"], final["error"],
                            results, account(self._ledger, self.config.pricing))

    def _orchestrator_toolset(self) -> Toolset:
        tools = Toolset(swarm_tools(self, MAIN))
        for name in self._orchestrator_tools:
            tools.add(self.registry.get(name))
        return tools

    # ---- sub-agents -----------------------------------------------------------------------

    def register_spec(self, spec: AgentSpec) -> ToolResult:
        """`create_subagent`: add an agent type (same name + same prompt is a no-op)."""
        known = self.state.specs.get(spec.name)
        if known is not None:
            if known.system_prompt == spec.system_prompt:
                return ToolOk(f"agent {spec.name!r} already exists; assign tasks to it.")
            return ToolError(f"an agent named {spec.name!r} already exists with another prompt; "
                             "pick a new name.")
        if len(self.state.specs) >= self.config.max_specs:
            return ToolError(f"at most {self.config.max_specs} agent types per run; reuse one.")
        self.state.specs[spec.name] = spec
        self.log(MAIN, "spec", 0, spec.to_dict())
        return ToolOk(f"created agent {spec.name!r}; give it work with assign_task or swarm.")

    async def delegate(
        self, parent_id: str, step: int, jobs: Sequence[tuple[str, str, str]]
    ) -> list[SubagentResult]:
        """Run one sub-agent per (agent name, prompt, key) concurrently; keys make it idempotent.

        Raises KeyError for an unknown agent name and BudgetExceededError when the agent budget
        cannot admit every new sub-agent (then none is started).
        """
        new = [j for j in jobs if j[2] not in self.state.by_key]
        for name, _, _ in new:
            if self.state.spec(name) is None:
                known = ", ".join(["worker", *self.state.specs])
                raise KeyError(f"no agent named {name!r}; create it with create_subagent first "
                               f"(known: {known})")
        self.budget.admit_agents(len(new))
        records = [self._record_for(parent_id, step, *job) for job in jobs]
        await self.store.sync()
        return list(await asyncio.gather(*(self._supervise(r) for r in records)))

    def _record_for(self, parent_id: str, step: int, name: str, prompt: str, key: str) \
            -> AgentRecord:
        existing = self.state.by_key.get(key)
        if existing is not None:
            return self.state.agents[existing]
        spec = self.state.spec(name)
        assert spec is not None
        agent_id = self.state.new_agent_id(spec.name)
        data = {"spec": spec.to_dict(), "parent": parent_id, "parent_step": step, "key": key,
                "prompt": prompt}
        self.log(agent_id, "spawn", 0, data)
        apply_event(self.state, StoredEvent(0, agent_id, "spawn", 0, data, 0.0))
        if self.wire is not None:
            self.wire.emit(AgentSpawned(agent_id, spec.name, parent_id, prompt))
        return self.state.agents[agent_id]

    async def resume_agents(
        self, parent_id: str, step: int, follow_ups: Mapping[str, str], key: str
    ) -> list[SubagentResult]:
        """`resume`: continue the given agents with their context, concurrently."""
        records = [self._resumable(agent_id, key) for agent_id in follow_ups]
        for rec in records:
            if f"{key}:{rec.agent_id}" in self.state.by_key:
                continue  # this very call resumed it before a crash
            data = {"prompt": follow_ups[rec.agent_id], "parent": parent_id,
                    "parent_step": step, "key": key}
            self.log(rec.agent_id, "resume", rec.steps, data)
            apply_event(self.state, StoredEvent(0, rec.agent_id, "resume", rec.steps, data, 0.0))
        await self.store.sync()
        return list(await asyncio.gather(*(self._supervise(r) for r in records)))

    def _resumable(self, agent_id: str, key: str) -> AgentRecord:
        rec = self.state.agents.get(agent_id)
        if rec is None or agent_id == MAIN:
            known = ", ".join(a for a in self.state.agents if a != MAIN) or "none"
            raise KeyError(f"no sub-agent with id {agent_id!r} (known: {known})")
        if not rec.finished and f"{key}:{agent_id}" not in self.state.by_key:
            raise KeyError(f"agent {agent_id!r} is still running; wait for its result")
        return rec

    async def _supervise(self, rec: AgentRecord) -> SubagentResult:
        """Run a sub-agent to a final state; never raises except on cancellation."""
        if rec.finished and rec.result is not None:
            return rec.result  # finished before a crash: reuse, do not redo
        if self.backend is not None:
            return await self._settle(rec, await self._run_remote(rec))
        token = current_agent.set(rec.agent_id)
        max_steps = rec.base_steps + (rec.spec.max_steps or self.config.agent_max_steps)
        runner = self._runner(rec, self._toolset_for(rec), max_steps)
        try:
            outcome = await self._run_watched(runner)
            result = self._completed(rec, outcome)
        except Exception as exc:  # the supervisor boundary: every failure becomes a result
            result = self._failed(rec, runner, exc)
        finally:
            current_agent.reset(token)
        return await self._settle(rec, result)

    async def _run_watched(self, runner: AgentRunner) -> TurnOutcome:
        """Run with the per-agent timeout and the stall watchdog (reset after each step)."""
        hooks = runner.hooks
        assert isinstance(hooks, SwarmHooks)
        async with asyncio.timeout(self.config.agent_timeout_s) as overall:
            try:
                async with asyncio.timeout(self.config.stall_timeout_s) as stall:
                    hooks.watchdog = stall
                    return await runner.run()
            except TimeoutError:
                if overall.expired():
                    raise
                raise StalledError(self.config.stall_timeout_s) from None
        raise AssertionError("unreachable")

    def _completed(self, rec: AgentRecord, outcome: TurnOutcome) -> SubagentResult:
        if outcome.stop_reason == "tool_call_repeat":
            return SubagentResult(rec.agent_id, rec.spec.name, "aborted", outcome.text,
                                  rec.steps, rec.usage, "stopped by the loop guard: it repeated "
                                  f"the same tool call {self.config.repeat_limit} times")
        return SubagentResult(rec.agent_id, rec.spec.name, "completed", outcome.text, rec.steps,
                              rec.usage)

    def _failed(self, rec: AgentRecord, runner: AgentRunner, exc: Exception) -> SubagentResult:
        aborted = (BudgetExceededError, MaxStepsReachedError, TimeoutError, StalledError)
        state = "aborted" if isinstance(exc, aborted) else "failed"
        if isinstance(exc, TimeoutError):
            exc = TimeoutError(f"timed out after {self.config.agent_timeout_s} s")
        return SubagentResult(rec.agent_id, rec.spec.name, state, _last_text(runner), rec.steps,
                              rec.usage, _describe(exc))

    async def _settle(self, rec: AgentRecord, result: SubagentResult) -> SubagentResult:
        rec.state = result.state
        rec.result = result
        self.log(rec.agent_id, "done", rec.steps, {
            "state": result.state, "output": result.output, "error": result.error})
        await self.store.sync()
        if self.wire is not None:
            self.wire.emit(AgentFinished(rec.agent_id, result.state, rec.steps, rec.usage,
                                         result.error))
        return result

    async def _run_remote(self, rec: AgentRecord) -> SubagentResult:
        """One invocation on the remote backend; its steps are logged when it returns."""
        assert self.backend is not None
        answer = final_answer(rec.history)
        if answer is not None:  # its last step answered before a crash; nothing to run
            return SubagentResult(rec.agent_id, rec.spec.name, "completed", answer.content,
                                  rec.steps, rec.usage)
        want = rec.base_steps + (rec.spec.max_steps or self.config.agent_max_steps) - rec.steps
        try:
            granted = self.budget.grant_steps(want)
        except BudgetExceededError as exc:
            return SubagentResult(rec.agent_id, rec.spec.name, "aborted", "", rec.steps,
                                  rec.usage, str(exc))
        if granted == 0:
            return SubagentResult(rec.agent_id, rec.spec.name, "aborted", "", rec.steps,
                                  rec.usage, "step budget exhausted")
        job = RemoteJob(rec.agent_id, self._raw_providers[rec.spec.provider or "default"],
                        [self.registry.get(n) for n in self._tool_names(rec.spec)],
                        list(rec.history),
                        rec.steps, rec.steps + granted, self.config.repeat_limit,
                        self.config.settings, self.config.agent_timeout_s)
        report = await self.backend.run(job)
        self._absorb(rec, report)
        self.budget.refund_steps(granted - sum(st.message is not None for st in report.steps))
        return self._remote_result(rec, report, budget_cut=granted < want)

    def _absorb(self, rec: AgentRecord, report: RemoteReport) -> None:
        for st in report.steps:
            if st.message is not None:  # else the step's LLM call is in the log already
                data = {"message": st.message, "usage": st.usage.to_dict()}
                self.log(rec.agent_id, "llm", st.step, data)
                apply_event(self.state, StoredEvent(0, rec.agent_id, "llm", st.step, data, 0.0))
                self.budget.add_usage(st.usage)
            for call_id, output in st.outputs:
                tool = {"call_id": call_id, "output": output}
                self.log(rec.agent_id, "tool", st.step, tool)
                apply_event(self.state, StoredEvent(0, rec.agent_id, "tool", st.step, tool, 0.0))

    def _remote_result(self, rec: AgentRecord, report: RemoteReport, *, budget_cut: bool) \
            -> SubagentResult:
        state, error = "completed", None
        if report.error_kind is not None:
            state, error = report.error_kind, report.error
            if budget_cut and "limit of" in (error or ""):
                error = "step budget exhausted"
        elif report.stop_reason == "tool_call_repeat":
            state, error = "aborted", "stopped by the loop guard"
        return SubagentResult(rec.agent_id, rec.spec.name, state, report.text,  # type: ignore[arg-type]
                              rec.steps, rec.usage, error)

    def _tool_names(self, spec: AgentSpec) -> list[str]:
        """The swarm-wide sub-agent tools, then the type's own (each once)."""
        return list(dict.fromkeys((*self.config.subagent_tools, *spec.tools)))

    def _toolset_for(self, rec: AgentRecord) -> Toolset:
        tools = self.registry.subset(self._tool_names(rec.spec))
        if rec.depth < self.config.max_depth:
            for t in swarm_tools(self, rec.agent_id):
                tools.add(t)
        return tools

    def _runner(self, rec: AgentRecord, toolset: Toolset, max_steps: int) -> AgentRunner:
        provider = self._providers.get(rec.spec.provider or "default")
        if provider is None:
            raise KeyError(f"agent type {rec.spec.name!r} names unknown provider "
                           f"{rec.spec.provider!r}; known: {sorted(self._providers)}")
        runner = AgentRunner(
            provider, toolset, rec.history, agent_id=rec.agent_id, max_steps=max_steps,
            wire=self.wire, hooks=SwarmHooks(self, rec), repeat_limit=self.config.repeat_limit,
            steps_done=rec.steps, usage=rec.usage,
            settings=dataclasses.replace(self.config.settings) if self.config.settings else None,
        )
        rec.history = runner.history  # one list: the record always shows the live context
        return runner


_LEDGER_KINDS = frozenset({"spawn", "resume", "llm"})


def _last_text(runner: AgentRunner) -> str:
    last = runner.last_assistant()
    return last.content if last is not None else ""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    known = (BudgetExceededError, MaxStepsReachedError, StalledError, ProviderError, TimeoutError)
    return text if isinstance(exc, known) else f"{type(exc).__name__}: {text}"


def _unfinished(rec: AgentRecord) -> SubagentResult:
    return SubagentResult(rec.agent_id, rec.spec.name, "aborted", "", rec.steps, rec.usage,
                          "the run ended before this agent finished")
