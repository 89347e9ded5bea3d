"""Task: hand one self-contained task to a sub-agent and get its summary back."""

from __future__ import annotations

from pydantic import BaseModel, Field

from openk2.agent.tools.base import ToolResult
from openk2.code.gate import Action
from openk2.code.subagents import SubagentHost, SubagentType
from openk2.code.tools.base import CodeTool, description


class Params(BaseModel):
    description: str = Field(description="A few words naming the task (for the log).")
    prompt: str = Field(description="The complete task for the sub-agent; it sees nothing "
                        "else of this conversation.")
    subagent_type: SubagentType = Field(default="explore", description="`explore` (read-only) "
                                        "or `coder` (full tools, same safety policy).")


class Task(CodeTool[Params]):
    """Starting a sub-agent changes nothing by itself: each of its calls meets the gate."""

    name = "Task"
    description = description(__file__, "task")
    Params = Params

    def __init__(self, host: SubagentHost) -> None:
        self.host = host

    def action(self, params: Params) -> Action:
        return Action(self.name, "state",
                      f"start {params.subagent_type} sub-agent: {params.description}"[:120],
                      output="subagent", origin=f"{params.subagent_type} sub-agent")

    async def run(self, params: Params) -> ToolResult:
        return await self.host.run(params.subagent_type, params.description, params.prompt)
