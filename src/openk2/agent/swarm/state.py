"""The run's agents as records, and how they are rebuilt by replaying the event log.

Replay is the whole of crash recovery: each `llm` event restores an assistant message and a
step, each `tool` event a tool answer, `done` a final result. An agent whose log ends in the
middle of a step resumes from there (its runner finishes the missing tool calls), and one whose
log ends in an answer is finished, so steps that were logged are never run again (every case:
`runtime.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from openk2.agent.llm.message import Message, Usage, system, tool_result, user
from openk2.agent.swarm.results import SubagentResult
from openk2.agent.swarm.spec import AgentSpec, default_worker
from openk2.agent.swarm.store import StoredEvent

RecordState: TypeAlias = Literal["pending", "running", "completed", "failed", "aborted"]
MAIN = "main"


@dataclass(slots=True)
class AgentRecord:
    """One agent of the run: its spec, context, progress and final result."""

    agent_id: str
    spec: AgentSpec
    parent_id: str | None
    key: str | None
    history: list[Message]
    depth: int = 0
    state: RecordState = "pending"
    steps: int = 0
    base_steps: int = 0
    """Steps taken before the current invocation (spawn or resume)."""
    usage: Usage = field(default_factory=Usage)
    result: SubagentResult | None = None

    @property
    def finished(self) -> bool:
        """Whether the agent reached a final state."""
        return self.state in ("completed", "failed", "aborted")


@dataclass(slots=True)
class RunState:
    """Everything the runtime knows about one run."""

    run_id: str
    task: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, AgentRecord] = field(default_factory=dict)
    specs: dict[str, AgentSpec] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    next_index: int = 1
    final: dict[str, Any] | None = None

    def new_agent_id(self, spec_name: str) -> str:
        """A short unique id such as `researcher-12`."""
        base = re.sub(r"[^A-Za-z0-9_-]", "_", spec_name)[:40]
        agent_id = f"{base}-{self.next_index}"
        self.next_index += 1
        return agent_id

    def spec(self, name: str) -> AgentSpec | None:
        """A registered spec (the default worker is always known)."""
        if name in self.specs:
            return self.specs[name]
        return default_worker() if name == default_worker().name else None


def replay(run_id: str, events: Iterable[StoredEvent]) -> RunState:
    """Rebuild a run's state from its log."""
    state = RunState(run_id)
    for ev in events:
        apply_event(state, ev)
    return state


def apply_event(state: RunState, ev: StoredEvent) -> None:
    """Apply one logged event to `state`."""
    handler = _APPLY.get(ev.kind)
    if handler is None:
        raise ValueError(f"unknown event kind {ev.kind!r} at seq {ev.seq}")
    handler(state, ev)


def _apply_run(state: RunState, ev: StoredEvent) -> None:
    state.task = ev.data["task"]
    state.meta = ev.data.get("meta", {})
    spec = AgentSpec(name="orchestrator", system_prompt=ev.data["system_prompt"])
    history = [system(spec.system_prompt), user(state.task)]
    state.agents[MAIN] = AgentRecord(MAIN, spec, None, None, history, state="running")


def _apply_spec(state: RunState, ev: StoredEvent) -> None:
    spec = AgentSpec.from_dict(ev.data)
    state.specs[spec.name] = spec


def _apply_spawn(state: RunState, ev: StoredEvent) -> None:
    d = ev.data
    spec = AgentSpec.from_dict(d["spec"])
    history = [system(spec.system_prompt), user(d["prompt"])]
    parent = state.agents.get(d["parent"])
    depth = parent.depth + 1 if parent else 1
    state.agents[ev.agent_id] = AgentRecord(
        ev.agent_id, spec, d["parent"], d["key"], history, depth=depth, state="running"
    )
    state.by_key[d["key"]] = ev.agent_id
    state.next_index = max(state.next_index, _index_of(ev.agent_id) + 1)


def _apply_llm(state: RunState, ev: StoredEvent) -> None:
    rec = state.agents[ev.agent_id]
    rec.history.append(Message.from_openai(ev.data["message"]))
    rec.steps = ev.step
    rec.usage = rec.usage + Usage(**_usage_fields(ev.data["usage"]))


def _apply_tool(state: RunState, ev: StoredEvent) -> None:
    rec = state.agents[ev.agent_id]
    rec.history.append(tool_result(ev.data["call_id"], ev.data["output"]))


def _apply_done(state: RunState, ev: StoredEvent) -> None:
    rec = state.agents[ev.agent_id]
    d = ev.data
    rec.state = d["state"]
    rec.result = SubagentResult(
        rec.agent_id, rec.spec.name, d["state"], d["output"], rec.steps, rec.usage, d.get("error")
    )


def _apply_resume(state: RunState, ev: StoredEvent) -> None:
    rec = state.agents[ev.agent_id]
    if ev.data.get("prompt"):
        rec.history.append(user(ev.data["prompt"]))
    rec.state = "running"
    rec.result = None
    rec.base_steps = rec.steps
    state.by_key[f"{ev.data['key']}:{ev.agent_id}"] = ev.agent_id


def _apply_final(state: RunState, ev: StoredEvent) -> None:
    state.final = ev.data


_APPLY = {
    "run": _apply_run,
    "spec": _apply_spec,
    "spawn": _apply_spawn,
    "llm": _apply_llm,
    "tool": _apply_tool,
    "done": _apply_done,
    "resume": _apply_resume,
    "final": _apply_final,
}


def _usage_fields(d: dict[str, int]) -> dict[str, int]:
    return {k: d.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "cached_tokens")}


def _index_of(agent_id: str) -> int:
    tail = agent_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
