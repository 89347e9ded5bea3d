"""The SwarmBench-Sim workload on LangGraph `Send` (the idiomatic map-reduce with loops).

Each sub-agent step is an agent node (the LLM call) followed by a tool node, as in LangGraph's
ReAct agents, each routing to the next with `Command(goto=Send(...))`; `fused=True` does both
in one node (cheaper for LangGraph, less idiomatic). A deferred `collect` node joins a round,
then the orchestrator node runs again. No checkpointer (LangGraph's fastest setting). Under
429 the nodes carry a `RetryPolicy` that retries the simulated rate-limit error (LangGraph's
defaults do not retry it), with LangGraph's default backoff (0.5 s doubling, jitter).
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send

from swarm_workloads import RateLimitedError, Workload


class RunState(TypedDict):
    round: int
    done: Annotated[list[str], operator.add]


class WorkState(TypedDict):
    item: str
    k: int


def build(w: Workload, bucket: Any, counter: list[int], fused: bool) -> Any:
    """Compile the graph for workload `w`; `bucket` is a simulated provider limit or None."""

    async def llm(latency: float) -> None:
        if bucket is not None:
            ok, retry_after = await bucket.serve(latency)
            if not ok:
                raise RateLimitedError(retry_after or 0.0)
        elif latency > 0:
            await asyncio.sleep(latency)
        counter[0] += 1

    async def orch(state: RunState) -> dict[str, Any]:
        await llm(w.orch_latency[state["round"]])
        return {"round": state["round"] + 1}

    def fan(state: RunState) -> Any:
        r = state["round"] - 1
        if r >= len(w.rounds):
            return END
        return [Send("work", {"item": item, "k": 1}) for item in w.rounds[r]]

    async def work(ws: WorkState) -> Command:
        item, k = ws["item"], ws["k"]
        await llm(w.latency[(item, k)])
        if k < w.steps[item]:
            if fused:
                _tool(item, k)
                return Command(goto=Send("work", {"item": item, "k": k + 1}))
            return Command(goto=Send("tool", {"item": item, "k": k}))
        return Command(goto="collect", update={"done": [item]})

    async def tool(ws: WorkState) -> Command:
        _tool(ws["item"], ws["k"])
        return Command(goto=Send("work", {"item": ws["item"], "k": ws["k"] + 1}))

    async def collect(state: RunState) -> dict[str, Any]:
        return {}

    retry = RetryPolicy(retry_on=RateLimitedError, max_attempts=1000) if bucket else None
    g = StateGraph(RunState)
    g.add_node("orch", orch, retry_policy=retry)
    g.add_node("work", work, input_schema=WorkState, retry_policy=retry,
               destinations=("work", "tool", "collect"))
    g.add_node("tool", tool, input_schema=WorkState, destinations=("work",))
    g.add_node("collect", collect, defer=True)
    g.add_edge(START, "orch")
    g.add_conditional_edges("orch", fan, ["work", END])
    g.add_edge("collect", "orch")
    return g.compile()


def _tool(item: str, k: int) -> str:
    """The same trivial tool the openk2 run calls."""
    return f"noted {item} {k}"


async def run(w: Workload, bucket: Any = None, *, fused: bool = False) -> dict[str, float]:
    """Run `w` once; wall-clock, successful LLM steps."""
    counter = [0]
    graph = build(w, bucket, counter, fused)
    start, cpu = time.perf_counter(), time.process_time()
    out = await graph.ainvoke({"round": 0, "done": []}, {"recursion_limit": 1_000_000})
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert len(out["done"]) == w.agents, "LangGraph lost items"
    return {"wall": wall, "cpu": cpu, "steps": counter[0]}
