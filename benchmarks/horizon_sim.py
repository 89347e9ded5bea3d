"""A horizon figure from endpoints whose execution really degrades with length: SIMULATED.

Not a model. The embedded model scores 0 on the `horizon` suite even at one step (it was
trained on four tools, not on key lookups), so its report has no curve. To show what the
suite measures, this script serves simulated OpenAI-compatible executors on 127.0.0.1 that
read each horizon prompt (the table, the start key, the step count), follow the chain
themselves, and at every step write a wrong key with a programmed probability 1 - p,
then carry on from the wrong key, as a model that lost its place would. They never see the
suite's reference answers. Their success at N steps is p^N by construction, so the METR-style
logistic fit should find H50 near ln(0.5)/ln(p): the figure checks the harness, and says
nothing about any model.

    python benchmarks/horizon_sim.py --out examples/eval/horizon

runs `openk2 eval --suite horizon` (the real CLI, in a subprocess) against three simulated
endpoints (p = 0.99, 0.95, 0.85) and writes its report.json/report.html there, plus the two
horizon figures as PNGs. With `--swarm` the chains go through the swarm runtime instead
(`openk2 eval swarm-horizon`'s code: an orchestrator delegates, a sub-agent makes one kv_get
call per step), played by simulated agents with the same per-step accuracies.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from openk2.agent.llm.scripted import ChatCall, Reply, ScriptedProvider, call

_PAIR = re.compile(r"^([a-z]{5}) -> ([a-z]{5})$", re.M)
_START = re.compile(r"Start at key '([a-z]{5})'")
_TIMES = re.compile(r"Do this (\d+) time")
STEP_ACCURACIES = (0.99, 0.95, 0.85)


def _draw(*parts: Any) -> float:
    """A uniform number in [0, 1) fixed by its inputs (runs are reproducible)."""
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def execute(prompt: str, p: float, salt: Any) -> str:
    """Follow the prompt's chain, each step right with probability p (else a wrong key)."""
    table = dict(_PAIR.findall(prompt))
    start, times = _START.search(prompt), _TIMES.search(prompt)
    if not table or start is None or times is None:
        return "I cannot find a key table in this prompt."
    keys = sorted(set(table) | set(table.values()))
    key, path = start.group(1), []
    for step in range(int(times.group(1))):
        right = table.get(key)
        if right is not None and _draw(salt, step, "ok") < p:
            key = right
        else:  # lost its place: some other key of the table
            wrong = [k for k in keys if k != right]
            key = wrong[int(_draw(salt, step, "which") * len(wrong))]
        path.append(key)
    return "\n".join(path) + f"\nFINAL: {key}"


def simulated_agent(p: float, seed: int = 0) -> ScriptedProvider:
    """A scripted provider that plays both swarm roles, for `openk2 eval swarm-horizon`:
    as the orchestrator (it has `assign_task`) it hands the task to the generic worker and
    answers with the worker's result; as the worker (it has `kv_get`) it makes one lookup
    per step, reading each step's result right with probability p; once wrong it goes on
    with made-up keys (a different one each step: the swarm's loop guard stops an agent
    that repeats a call), so it still answers with N keys."""

    def step(c: ChatCall) -> Reply:
        if any(t.name == "assign_task" for t in c.tools):
            return _orchestrate(c)
        return _work(c, p, seed)

    return ScriptedProvider(step, model=f"simulated-agent-p{p}")


def _orchestrate(c: ChatCall) -> Reply:
    last = c.messages[-1]
    if last.role == "tool":  # the worker's <subagent ...> result: pass its body on
        return Reply(text="\n".join(x for x in last.content.splitlines()
                                     if not x.startswith("<")))
    task = next(m.content for m in c.messages if m.role == "user")
    return Reply(tool_calls=[call("assign_task", 0, agent="worker", prompt=task)])


def _work(c: ChatCall, p: float, seed: int) -> Reply:
    task = next(m.content for m in c.messages if m.role == "user")
    start, times = _START.search(task), _TIMES.search(task)
    if start is None or times is None:
        return Reply(text="I cannot find a start key in this task.")
    key, reached, lost = start.group(1), [], False
    for i, result in enumerate(m.content for m in c.messages if m.role == "tool"):
        lost = lost or _draw(seed, task, i) >= p
        key = _made_up_key(seed, task, i) if lost else result.strip()
        reached.append(key)
    if len(reached) < int(times.group(1)):
        return Reply(tool_calls=[call("kv_get", len(reached), key=key)])
    return Reply(text="\n".join(reached) + f"\nFINAL: {key}")


def _made_up_key(*salt: Any) -> str:
    return "".join(chr(97 + int(_draw(*salt, j) * 26)) for j in range(5))


class SimulatedExecutor:
    """One OpenAI-compatible endpoint with step accuracy p; repeats of a prompt are new
    draws (the salt counts how often the prompt was answered)."""

    def __init__(self, p: float, seed: int = 0) -> None:
        self.p, self.seed = p, seed
        self.seen: Counter[str] = Counter()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)

    async def models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": f"simulated-p{self.p}", "object": "model", "owned_by": "horizon_sim"}]})

    async def chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        self.seen[prompt] += 1
        text = execute(prompt, self.p, (self.seed, prompt, self.seen[prompt]))
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return web.json_response({
            "id": "sim", "object": "chat.completion", "model": body.get("model", "sim"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage})


def start(apps: list[web.Application]) -> tuple[list[str], asyncio.AbstractEventLoop]:
    """Serve the apps on free 127.0.0.1 ports from a background thread; their base URLs."""
    loop = asyncio.new_event_loop()
    urls: list[str] = []
    ready = threading.Event()

    async def up() -> None:
        for app in apps:
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            urls.append(f"http://127.0.0.1:{port}/v1")
        ready.set()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(up())
        loop.run_forever()

    threading.Thread(target=main, daemon=True).start()
    ready.wait(30)
    return urls, loop


def write_figures(out: Path) -> list[Path]:
    """The report's horizon figures as PNG files beside it."""
    from openk2.evals.plots import horizon_figures

    report = json.loads((out / "report.json").read_text())
    written = []
    for title, png in horizon_figures(report).items():
        path = out / (title.split(": ")[1].replace(" ", "_") + ".png")
        path.write_bytes(png)
        written.append(path)
    return written


def swarm_main(out: Path, n: int, steps: tuple[int, ...]) -> None:
    """The same through the swarm runtime: simulated agents, one kv_get call per step."""
    from openk2.evals.swarm_horizon import SwarmHorizonConfig, run_swarm_horizon

    reports = []
    for p in STEP_ACCURACIES:
        cfg = SwarmHorizonConfig(name=f"simulated-agent-p{p}", n=n, steps=steps,
                                 out_dir=out / f"p{p}", provider=simulated_agent(p),
                                 concurrency=8)
        reports.append(asyncio.run(run_swarm_horizon(cfg)))
    merged = {"config": {**reports[0]["config"], "endpoint": "simulated agents (not models)"},
              "endpoints": {k: v for r in reports for k, v in r["endpoints"].items()}}
    (out / "report.json").write_text(json.dumps(merged, indent=2) + "\n")
    for path in write_figures(out):
        print(f"wrote {path}")
    _print(merged)


def _print(report: dict[str, Any]) -> None:
    for name, ep in report["endpoints"].items():
        ex = ep["suites"]["horizon"]["extra"]
        truth = math.log(0.5) / math.log(float(name.rsplit("-p", 1)[1]))
        print(f"{name}: per-step {ex['per_step_accuracy']:.3f}, H50 {_fmt(ex['horizon_50'])}, "
              f"H80 {_fmt(ex['horizon_80'])}, closed-form H50 {ex['closed_form_h50']:.1f}; "
              f"programmed ln 0.5 / ln p = {truth:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("examples/eval/horizon"))
    ap.add_argument("--n", type=int, default=8 * 30, help="chains per endpoint")
    ap.add_argument("--steps", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--swarm", action="store_true", help="through the swarm runtime "
                    "(`openk2 eval swarm-horizon`'s code) with simulated agents")
    args = ap.parse_args()
    if args.swarm:
        swarm_main(args.out, args.n, tuple(int(x) for x in args.steps.split(",")))
        return
    sims = [SimulatedExecutor(p) for p in STEP_ACCURACIES]
    urls, loop = start([s.app for s in sims])
    cmd = [sys.executable, "-m", "openk2", "eval", "--suite", "horizon", "--n", str(args.n),
           "--horizon-steps", args.steps, "--out", str(args.out), "--retry-delay", "0.01"]
    for sim, url in zip(sims, urls, strict=True):
        cmd += ["--endpoint", f"simulated-p{sim.p}={url},model=simulated,concurrency=8"]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])})
    loop.call_soon_threadsafe(loop.stop)
    for path in write_figures(args.out):
        print(f"wrote {path}")
    _print(json.loads((args.out / "report.json").read_text()))


def _fmt(h: float | None) -> str:
    return "-" if h is None else f"{h:.1f}"


if __name__ == "__main__":
    main()
