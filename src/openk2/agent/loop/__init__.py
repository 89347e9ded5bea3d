"""The agent loop: one `step()` = one LLM call + concurrent tools; the runner repeats it."""

from openk2.agent.loop.events import Event, Wire
from openk2.agent.loop.runner import (
    AgentRunner,
    LoopGuard,
    MaxStepsReached,
    MaxStepsReachedError,
    RunHooks,
    StepStopReason,
    TurnOutcome,
)
from openk2.agent.loop.step import StepResult, call_llm, run_tools

__all__ = [
    "AgentRunner",
    "Event",
    "LoopGuard",
    "MaxStepsReached",
    "MaxStepsReachedError",
    "RunHooks",
    "StepResult",
    "StepStopReason",
    "TurnOutcome",
    "Wire",
    "call_llm",
    "run_tools",
]
