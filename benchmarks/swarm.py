"""SwarmBench-Sim: openk2's swarm runtime vs LangGraph `Send` on the same simulated workloads.

    .venv/bin/python benchmarks/swarm.py            # all sections
    .venv/bin/python benchmarks/swarm.py overhead   # or: critical, ratelimit, scale

Sections (targets from the swarm issue):
- overhead: per-step runtime cost at zero latency (<= 50 us and >= 5x below LangGraph);
- critical: wall-clock / ideal critical path on wide, deep and heavy-tailed workloads (<= 1.1x);
- ratelimit: goodput (successful LLM steps per second) and refused requests behind a
  token-bucket provider that answers 429 + Retry-After, and behind a concurrency cap that
  answers 429 without one (>= 2x LangGraph); `--repeats` runs of each;
- scale: 300 sub-agents x 4,000 steps with the durable SQLite log, peak RSS (<= 300 MB),
  run in a fresh subprocess so nothing else counts.
The orchestrator is scripted (one `swarm` call per round), so both runtimes do the same work.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import swarm_langgraph
from openk2.agent.llm import RateLimitError, Usage
from openk2.agent.llm.scripted import ChatCall, Reply, ScriptedProvider, call
from openk2.agent.swarm import (
    ORCHESTRATOR_PROMPT,
    AgentSpec,
    BackoffPolicy,
    BudgetLimits,
    Swarm,
    SwarmConfig,
    open_run_store,
)
from openk2.agent.tools import Toolset, tool
from swarm_workloads import ConcurrencyCap, TokenBucket, Workload, deep, heavy_tail, make, wide


class NoteParams(BaseModel):
    item: str
    k: int


@tool()
async def note(p: NoteParams) -> str:
    """Record progress (the simulated tool of every step)."""
    return f"noted {p.item} {p.k}"


USAGE = Usage(prompt_tokens=200, completion_tokens=20)  # fixed: the fake model costs nothing


def _script(w: Workload, bucket: Any):
    """The fake model: replies are built up front so the model itself costs ~nothing.

    With a simulated provider limit (`bucket`), the limit decides whether a call is served
    (after its latency) or refused with 429.
    """
    replies: dict[tuple[str, int], Reply] = {}
    for item, n in w.steps.items():
        for k in range(1, n + 1):
            lat = 0.0 if bucket else w.latency[(item, k)]
            replies[(item, k)] = (
                Reply(tool_calls=[call("note", 0, item=item, k=k)], delay=lat, usage=USAGE)
                if k < n else Reply(text=f"<result>{item}</result>", delay=lat, usage=USAGE))

    def plain(c: ChatCall) -> Reply:
        done = (len(c.messages) - 2) // 2
        if c.messages[0].content is ORCHESTRATOR_PROMPT:
            lat = 0.0 if bucket else w.orch_latency[done]
            if done < len(w.rounds):
                return Reply(tool_calls=[call("swarm", 0, prompt_template="Do {{item}}",
                                              items=w.rounds[done])], delay=lat, usage=USAGE)
            return Reply(text="all done", delay=lat, usage=USAGE)
        return replies[(c.messages[1].content[3:], done + 1)]

    async def limited(c: ChatCall) -> Reply | RateLimitError:
        done = (len(c.messages) - 2) // 2
        if c.messages[0].content is ORCHESTRATOR_PROMPT:
            lat = w.orch_latency[done]
        else:
            lat = w.latency[(c.messages[1].content[3:], done + 1)]
        ok, retry_after = await bucket.serve(lat)
        return plain(c) if ok else RateLimitError("simulated 429", retry_after=retry_after)

    return limited if bucket else plain


async def run_openk2(w: Workload, bucket: Any = None,
                     run_dir: Path | None = None) -> dict[str, float]:
    """Run `w` on openk2's swarm; returns wall-clock and step counts."""
    limits = BudgetLimits(max_steps=w.total_steps + 1, max_agents=w.agents)
    config = SwarmConfig(limits=limits, agent_max_steps=max(w.steps.values()) + 1,
                         agent_timeout_s=None, stall_timeout_s=None, max_return_chars=4000,
                         max_batch=max(len(r) for r in w.rounds),
                         backoff=BackoffPolicy(base_s=0.05, max_s=5.0, max_retries=1000))
    worker = AgentSpec(name="worker", system_prompt="Do the item.", tools=("note",))
    store = open_run_store(run_dir, "bench") if run_dir else None
    swarm = Swarm(ScriptedProvider(_script(w, bucket)), config=config, tools=Toolset([note]),
                  specs=[worker], store=store)
    start, cpu = time.perf_counter(), time.process_time()
    out = await swarm.run("SwarmBench-Sim task")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert out.state == "completed", out.error
    assert all(a.state == "completed" for a in out.agents) and len(out.agents) == w.agents
    if store is not None:
        store.close()
    return {"wall": wall, "cpu": cpu, "steps": out.accounting.total_steps,
            "critical_steps": out.accounting.critical_steps, "rate_limited": swarm.rate_limited}


def _best(fn, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        gc.collect()
        runs.append(asyncio.run(fn()))
    return min(runs, key=lambda r: r["wall"])


def section_overhead(repeats: int) -> dict[str, float]:
    w = wide(n=100, steps=10, median=0.0)
    ours = _best(lambda: run_openk2(w), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        durable = _best(lambda: run_openk2(w, run_dir=Path(tmp) / "x"), 1)
    lg = _best(lambda: swarm_langgraph.run(w), repeats)
    fused = _best(lambda: swarm_langgraph.run(w, fused=True), repeats)
    runs = (("openk2", ours), ("openk2_sqlite", durable), ("langgraph", lg),
            ("langgraph_fused", fused))
    per = {k: r["wall"] / w.total_steps * 1e6 for k, r in runs}
    cpu = {k: r["cpu"] / w.total_steps * 1e6 for k, r in runs}
    print(f"\n[overhead] zero latency, {w.agents} agents x 10 steps = {w.total_steps} steps "
          "(wall-clock and process CPU time per step, best of runs)")
    labels = {"openk2": "openk2 (memory log)", "openk2_sqlite": "openk2 (SQLite WAL)",
              "langgraph": "LangGraph Send (agent node + tool node)",
              "langgraph_fused": "LangGraph Send (one fused node per step)"}
    for key, label in labels.items():
        print(f"  {label:<42} {per[key]:7.1f} us wall {cpu[key]:7.1f} us CPU")
    print(f"  ratio LangGraph/openk2: {per['langgraph'] / per['openk2']:.1f}x "
          f"(durable: {per['langgraph'] / per['openk2_sqlite']:.1f}x; fused LangGraph: "
          f"{per['langgraph_fused'] / per['openk2']:.1f}x)")
    return per


def section_critical(repeats: int) -> None:
    print("\n[critical path] wall-clock / ideal critical path (median step 0.2 s)")
    for w in (wide(n=100), deep(), heavy_tail(n=100)):
        ideal = w.ideal()
        ours = _best(lambda w=w: run_openk2(w), repeats)
        lg = _best(lambda w=w: swarm_langgraph.run(w), repeats)
        assert ours["critical_steps"] == w.critical_steps()
        print(f"  {w.name:<10} ideal {ideal:6.2f}s  openk2 {ours['wall'] / ideal:5.3f}x  "
              f"LangGraph {lg['wall'] / ideal:5.3f}x  (critical steps {w.critical_steps()}, "
              f"total {w.total_steps})")


def section_ratelimit(rate: float, burst: int, cap: int, repeats: int) -> None:
    w = make("wide-429", 1, 200, 5, 0.05, seed=4)
    mean = sum(w.latency.values()) / len(w.latency)
    print(f"\n[429] {w.total_steps} steps, 200 agents, mean step {mean * 1e3:.0f} ms; "
          "goodput = successful steps/s; refused = requests answered 429")
    for label, make_limit in ((f"RPM-style bucket {rate:.0f} req/s, burst {burst}",
                               lambda: TokenBucket(rate, burst)),
                              (f"concurrency cap {cap} in flight",
                               lambda: ConcurrencyCap(cap))):
        print(f"  {label} (best possible {make_limit().capacity(mean):.0f} steps/s)")
        for _ in range(repeats):
            _ratelimit_once(w, make_limit, mean)


def _ratelimit_once(w: Workload, make_limit: Any, mean: float) -> None:
    b1, b2 = make_limit(), make_limit()
    ours = asyncio.run(run_openk2(w, bucket=b1))
    lg = asyncio.run(swarm_langgraph.run(w, bucket=b2))
    best = b1.capacity(mean)
    g1, g2 = ours["steps"] / ours["wall"], lg["steps"] / lg["wall"]
    print(f"    openk2 {ours['wall']:6.2f}s goodput {g1:6.1f}/s ({g1 / best:4.0%}) refused "
          f"{b1.rejected:4d} | LangGraph {lg['wall']:6.2f}s goodput {g2:6.1f}/s "
          f"({g2 / best:4.0%}) refused {b2.rejected:4d} | ratio {g1 / g2:.2f}x")


def scale_child() -> None:
    """300 agents, 4,000 steps total, SQLite log; prints JSON with wall and peak RSS."""
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    w = make("scale", 1, 300, 13, 0.01, seed=5)  # 300 x 13 + 2 = 3,902 steps
    w.steps.update({f"r0i{i}": 14 for i in range(98)})  # ... + 98 = 4,000 steps
    for i in range(98):
        w.latency[(f"r0i{i}", 14)] = 0.01
    with tempfile.TemporaryDirectory() as tmp:
        res = asyncio.run(run_openk2(w, run_dir=Path(tmp)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**res, "agents": w.agents, "rss_after_imports_mb": base, "peak_rss_mb": peak,
                      "ideal": w.ideal()}))


def section_scale() -> None:
    out = subprocess.run([sys.executable, __file__, "scale-child"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parent)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n[scale] {r['agents']} agents, {r['steps']} steps, SQLite WAL log, 10 ms median step")
    print(f"  wall {r['wall']:.2f}s (ideal {r['ideal']:.2f}s), critical steps "
          f"{r['critical_steps']}, peak RSS {r['peak_rss_mb']:.0f} MB "
          f"(after imports {r['rss_after_imports_mb']:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", nargs="?", default="all",
                        choices=["all", "overhead", "critical", "ratelimit", "scale",
                                 "scale-child"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--cap", type=int, default=8)
    args = parser.parse_args()
    if args.section == "scale-child":
        scale_child()
        return
    if args.section in ("all", "overhead"):
        section_overhead(args.repeats)
    if args.section in ("all", "critical"):
        section_critical(1)
    if args.section in ("all", "ratelimit"):
        section_ratelimit(args.rate, args.burst, args.cap, args.repeats)
    if args.section in ("all", "scale"):
        section_scale()


if __name__ == "__main__":
    main()
