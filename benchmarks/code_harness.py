"""`openk2 code`: start-up time and the cost of its safety layers per tool call, as ratios.

- startup: wall time of `openk2 code --help` against `python -c "import typer"` (the floor of
  any typer CLI) in the same run; also whether torch was imported (it must not be).
- tool calls: a scripted session of N ReadFile steps through the whole harness (gate with the
  guard's policy + audit log, fsynced session log, events) against the same steps through a
  bare `AgentRunner` + `Toolset` (no gate, no log); CPU time, best of R interleaved runs.
- shell: one `Shell` call inside the bubblewrap sandbox against the same call unsandboxed
  (wall time: the cost is a process start), best of R.

Usage: python benchmarks/code_harness.py [--steps N] [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openk2.agent.llm.message import system, user
from openk2.agent.llm.scripted import Reply, ScriptedProvider, call
from openk2.agent.loop.runner import AgentRunner
from openk2.agent.tools.base import Toolset
from openk2.code.build import open_session
from openk2.code.config import CodeSettings
from openk2.code.launch import PlainLauncher
from openk2.code.safety import build_safety
from openk2.code.sessions import SessionStore
from openk2.code.tools.read_file import ReadFile
from openk2.code.tools.shell import Shell
from openk2.code.workspace import Workspace


def wall(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def startup(repeat: int) -> dict[str, object]:
    code = [sys.executable, "-m", "openk2", "code", "--help"]
    floor = [sys.executable, "-c", "import typer"]
    t_code, t_floor = wall(code, repeat), wall(floor, repeat)
    probe = subprocess.run([sys.executable, "-X", "importtime", *code[1:]],
                           capture_output=True, text=True, check=True)
    return {"code_help_s": round(t_code, 3), "import_typer_s": round(t_floor, 3),
            "ratio": round(t_code / t_floor, 2), "imports_torch": " torch" in probe.stderr}


def script(steps: int) -> list[Reply]:
    calls = [Reply(tool_calls=[call("ReadFile", i, path="f.txt", line_offset=1 + i % 3)])
             for i in range(steps)]
    return [*calls, Reply(text="done")]


async def full(ws: Workspace, state: Path, steps: int) -> float:
    settings = CodeSettings(model="bench", mode="auto", repeat_limit=0, max_steps=steps + 1)
    safety = build_safety(settings, ws, sandbox=False, snapshots=False)
    session = open_session(settings, ws, provider=ScriptedProvider(script(steps)),
                           safety=safety, store=SessionStore(state))
    session.add_user("read")
    start = time.process_time()
    await session.run()
    took = time.process_time() - start
    session.log.close()
    return took


async def bare(ws: Workspace, steps: int) -> float:
    runner = AgentRunner(ScriptedProvider(script(steps)), Toolset([ReadFile(ws)]),
                         [system("bench"), user("read")], max_steps=steps + 1, repeat_limit=0)
    start = time.process_time()
    await runner.run()
    return time.process_time() - start


async def shell(ws: Workspace, sandboxed: bool, repeat: int) -> float:
    settings = CodeSettings(model="bench", mode="yolo")
    launcher = build_safety(settings, ws, snapshots=False).launcher if sandboxed \
        else PlainLauncher()
    tool = Shell(ws, launcher)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        await tool.run(tool.Params(command="true"))
        best = min(best, time.perf_counter() - start)
    return best


async def tools(steps: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        (root / "f.txt").write_text("".join(f"line {i}\n" for i in range(200)))
        os.environ.setdefault("OPENK2_STATE_DIR", str(Path(tmp) / "guard"))
        ws = Workspace.open(root)
        t_full, t_bare = float("inf"), float("inf")
        for r in range(repeat):
            t_full = min(t_full, await full(ws, Path(tmp) / f"s{r}", steps))
            t_bare = min(t_bare, await bare(ws, steps))
        t_box, t_plain = await shell(ws, True, repeat), await shell(ws, False, repeat)
    return {"steps": steps, "harness_ms_per_step": round(1000 * t_full / steps, 2),
            "bare_ms_per_step": round(1000 * t_bare / steps, 2),
            "harness_ratio": round(t_full / t_bare, 2),
            "shell_sandboxed_ms": round(1000 * t_box, 1),
            "shell_plain_ms": round(1000 * t_plain, 1),
            "sandbox_ratio": round(t_box / t_plain, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = {"startup": startup(args.repeat), "tools": asyncio.run(tools(args.steps, args.repeat))}
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
