"""The orchestrator's tools, compatible with Kimi's: create_subagent, assign_task, plus bulk
`swarm`, `resume` and `read_artifact`.

Several `assign_task` calls in one assistant turn run concurrently (the loop dispatches a
turn's calls together). Every call is idempotent per (agent, step, call id): after a crash the
same call finds the sub-agents it already started instead of spawning new ones.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from openk2.agent.llm.message import ToolSpec
from openk2.agent.loop.step import current_tool_call
from openk2.agent.swarm.budgets import BudgetExceededError
from openk2.agent.swarm.host import SwarmHost
from openk2.agent.swarm.results import render_batch
from openk2.agent.swarm.spec import DEFAULT_WORKER, AgentSpec
from openk2.agent.tools.base import Tool, ToolError, ToolOk, ToolResult, params_schema

ITEM = "{{item}}"


class CreateSubagentParams(BaseModel):
    name: str = Field(description="Unique name for this kind of agent, e.g. 'web_researcher'.")
    system_prompt: str = Field(description="The agent's role, capabilities and limits.")


class AssignTaskParams(BaseModel):
    agent: str = Field(description=f"Name of an agent made with create_subagent, or "
                       f"'{DEFAULT_WORKER}' for the generic worker.")
    prompt: str = Field(description="The complete, self-contained task. The agent sees nothing "
                        "else of this conversation.")


class SwarmParams(BaseModel):
    prompt_template: str = Field(description=f"Task text containing {ITEM}; one sub-agent runs "
                                 "per item with the item filled in.")
    items: list[str] = Field(description="The items to fan out over (distinct, at least 2).")
    agent: str = Field(default=DEFAULT_WORKER, description="Agent name to run for every item.")


class ResumeParams(BaseModel):
    agent_ids: dict[str, str] = Field(description="Agent id -> follow-up instruction ('' to "
                                      "just continue where it stopped).")


class ReadArtifactParams(BaseModel):
    ref: str = Field(description="Artifact reference from a truncation marker (artifact://...).")
    offset: int = Field(default=0, ge=0, description="First character to return.")
    limit: int = Field(default=8000, ge=1, le=100_000, description="Characters to return.")


class _SwarmTool:
    """Shared constructor: tools act for one parent agent of one swarm."""

    def __init__(self, swarm: SwarmHost, parent_id: str) -> None:
        self.swarm = swarm
        self.parent_id = parent_id

    def _key(self, suffix: str = "") -> tuple[str, int]:
        ctx = current_tool_call.get()
        if ctx is None:
            raise RuntimeError("swarm tools must run inside the agent loop")
        return f"{self.parent_id}@{ctx.step}/{ctx.call.id}{suffix}", ctx.step


class CreateSubagent(_SwarmTool, Tool[CreateSubagentParams]):
    name = "create_subagent"
    description = ("Define a kind of sub-agent (registration only; no work starts). Give it a "
                   "unique name and a system prompt with its role, capabilities and limits.")
    Params = CreateSubagentParams

    async def run(self, params: CreateSubagentParams) -> ToolResult:
        try:
            spec = AgentSpec(name=params.name, system_prompt=params.system_prompt)
        except ValueError as exc:
            return ToolError(str(exc))
        return self.swarm.register_spec(spec)


class AssignTask(_SwarmTool, Tool[AssignTaskParams]):
    name = "assign_task"
    description = ("Run one sub-agent on a task and return its final answer. Several "
                   "assign_task calls in the same turn run in parallel.")
    Params = AssignTaskParams

    async def run(self, params: AssignTaskParams) -> ToolResult:
        key, step = self._key()
        try:
            results = await self.swarm.delegate(
                self.parent_id, step, [(params.agent, params.prompt, key)]
            )
        except (KeyError, BudgetExceededError) as exc:
            return ToolError(exc.args[0] if exc.args else str(exc))
        return ToolOk(results[0].render(self.swarm.config.max_return_chars, self.swarm.artifacts),
                      brief=results[0].state)


class SwarmFanOut(_SwarmTool, Tool[SwarmParams]):
    name = "swarm"
    description = ("Fan out: run one sub-agent per item, all in parallel, and get every result "
                   f"back in one <agent_swarm_result>. The template must contain {ITEM}.")
    Params = SwarmParams

    async def run(self, params: SwarmParams) -> ToolResult:
        problem = self._validate(params)
        if problem:
            return ToolError(problem)
        key, step = self._key()
        jobs = [(params.agent, params.prompt_template.replace(ITEM, item), f"{key}#{i}")
                for i, item in enumerate(params.items)]
        try:
            results = await self.swarm.delegate(self.parent_id, step, jobs)
        except (KeyError, BudgetExceededError) as exc:
            return ToolError(exc.args[0] if exc.args else str(exc))
        return ToolOk(render_batch(results, self.swarm.config.max_return_chars,
                                   self.swarm.artifacts), brief=f"{len(results)} agents")

    def _validate(self, params: SwarmParams) -> str | None:
        if ITEM not in params.prompt_template:
            return f"prompt_template must contain {ITEM} where each item goes."
        if len(params.items) < 2:
            return "swarm needs at least 2 items; use assign_task for a single task."
        if len(set(params.items)) != len(params.items):
            return "items must be distinct; remove the duplicates and call again."
        cap = self.swarm.config.max_batch
        if len(params.items) > cap:
            return f"at most {cap} items per swarm call; split the items over several calls."
        return None


class Resume(_SwarmTool, Tool[ResumeParams]):
    name = "resume"
    description = ("Continue sub-agents that failed, were aborted or timed out (or give a "
                   "finished one a follow-up), keeping their context. Runs them in parallel.")
    Params = ResumeParams

    async def run(self, params: ResumeParams) -> ToolResult:
        if not params.agent_ids:
            return ToolError("agent_ids is empty; pass {agent_id: instruction}.")
        key, step = self._key()
        try:
            results = await self.swarm.resume_agents(self.parent_id, step, params.agent_ids, key)
        except (KeyError, BudgetExceededError) as exc:
            return ToolError(exc.args[0] if exc.args else str(exc))
        return ToolOk(render_batch(results, self.swarm.config.max_return_chars,
                                   self.swarm.artifacts), brief=f"{len(results)} resumed")


class ReadArtifact(_SwarmTool, Tool[ReadArtifactParams]):
    name = "read_artifact"
    description = "Read part of a sub-agent's full output that was truncated in its result."
    Params = ReadArtifactParams

    async def run(self, params: ReadArtifactParams) -> ToolResult:
        text = self.swarm.artifacts.load(params.ref)
        if text is None:
            return ToolError(f"no artifact {params.ref!r}; copy the reference from the marker.")
        chunk = text[params.offset : params.offset + params.limit]
        more = len(text) - params.offset - len(chunk)
        tail = f"\n[{more} more characters; next offset {params.offset + len(chunk)}]" if more > 0\
            else ""
        return ToolOk(chunk + tail)


_CLASSES = (CreateSubagent, AssignTask, SwarmFanOut, Resume, ReadArtifact)


def swarm_tools(swarm: SwarmHost, parent_id: str) -> list[Tool[BaseModel]]:
    """The orchestration tools acting for `parent_id`."""
    return [cls(swarm, parent_id) for cls in _CLASSES]  # type: ignore[misc]


def swarm_tool_specs() -> list[ToolSpec]:
    """What an orchestrator is told about its tools, without a running swarm (e.g. to render
    training chats that match the runtime exactly)."""
    return [ToolSpec(cls.name, cls.description, params_schema(cls.Params)) for cls in _CLASSES]
