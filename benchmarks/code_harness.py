"""`openk2 code`: start-up time and the cost of its safety layers per tool call, as ratios.

- startup: wall time of `openk2 code --help` against `python -c "import typer"` (the floor of
  any typer CLI) in the same run; also whether torch was imported (it must not be).
- tool calls: a scripted session of N ReadFile steps through the whole harness (gate with the
  guard's policy + audit log, fsynced session log, events) against the same steps through a
  bare `AgentRunner` + `Toolset` (no gate, no log); CPU time, best of R interleaved runs.
- shell: one `Shell` call inside the bubblewrap sandbox against the same call unsandboxed
  (wall time: the cost is a process start), best of R.
- side by side with kimi-cli 1.52.0 (`bash benchmarks/setup_kimi_cli.sh` installs it; skipped
  with a hint when absent): `--help` and time to the first prompt (spawn until the interactive
  input is live under a pseudo-terminal: both are prompt_toolkit apps, so the moment they turn
  on bracketed paste), median of N interleaved runs, each CLI with a private HOME and state, and
  kimi-cli on its offline scripted provider. The CPU, its SIMD flags and the load are printed.

Usage: python benchmarks/code_harness.py [--steps N] [--repeat R] [--startup-runs N]
       [--kimi-venv DIR | --no-kimi] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import kimi_reference as kimi
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


PROMPT_LIVE = b"\x1b[?2004h"  # prompt_toolkit enables bracketed paste when its input starts
CURSOR_QUERY, CURSOR_AT = b"\x1b[6n", b"\x1b[1;1R"


def first_prompt(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> float:
    """Seconds from spawn until `argv`'s interactive input is live, under a pseudo-terminal
    (answering prompt_toolkit's cursor-position queries as a terminal would)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env={**env, "TERM": "xterm-256color"}, start_new_session=True)
    os.close(slave)
    try:
        return _wait_for_prompt(master, proc, start, timeout)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)


def _wait_for_prompt(master: int, proc: subprocess.Popen[bytes], start: float,
                     timeout: float) -> float:
    tail = b""
    while PROMPT_LIVE not in tail:
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"no prompt from {proc.args!r} in {timeout} s")
        if not select.select([master], [], [], 0.05)[0]:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}) before a prompt")
            continue
        chunk = os.read(master, 65536)
        if CURSOR_QUERY in chunk:
            os.write(master, CURSOR_AT)
        tail = tail[-16:] + chunk
    return time.perf_counter() - start


def machine() -> dict[str, object]:
    """CPU model, the SIMD flags benchmarks report, cores and load: start-up is CPU-bound."""
    info = Path("/proc/cpuinfo").read_text()
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("model name")), "unknown")
    flags = sorted({f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile")
                    if f in info.split()})
    return {"cpu": model, "cpu_flags": " ".join(flags) or "none of avx2/avx512f/avx512_bf16/amx",
            "cores": os.cpu_count(), "load_avg": [round(x, 1) for x in os.getloadavg()]}


Commands = dict[str, tuple[list[str], dict[str, str]]]
"""name -> (argv, env)."""


def private_envs(tmp: Path) -> tuple[dict[str, str], kimi.KimiState]:
    """openk2's env and kimi-cli's state, each with a private HOME, config and state dirs."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    (tmp / "ws").mkdir(exist_ok=True)
    state = kimi.KimiState(tmp / "kimi", home)
    state.prepare(["text: hello"])
    ours = {**os.environ, "HOME": str(home), "OPENK2_STATE_DIR": str(tmp / "openk2-state"),
            "OPENK2_CODE_HOME": str(tmp / "openk2-code"), "XDG_CONFIG_HOME": str(tmp / "xdg")}
    return ours, state


def help_commands(tmp: Path, python: Path) -> Commands:
    ours, state = private_envs(tmp)
    return {
        "openk2 code --help": ([sys.executable, "-m", "openk2", "code", "--help"], ours),
        "kimi-cli --help": (kimi.kimi_argv(python, "--help"), state.env()),
        "kimi --help (1.52.0 entry point: deprecation notice only)":
            ([str(python), "-m", "kimi_cli", "--help"], state.env()),
    }


def prompt_commands(tmp: Path, python: Path) -> Commands:
    """Interactive sessions, timed to their first prompt (no model call happens before it)."""
    ours, state = private_envs(tmp)
    ws = str(tmp / "ws")
    openk2 = [sys.executable, "-m", "openk2", "code", "-w", ws, "--base-url",
              "http://127.0.0.1:9/v1", "--model", "bench", "--api-key", "none"]
    return {
        "openk2 code (first prompt)": (openk2, ours),
        "kimi-cli (first prompt)": (kimi.kimi_argv(python, *state.args(), "-w", ws), state.env()),
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sample(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of `fn`, CPU being that of the processes it ran and reaped: the
    figure a loaded, shared machine disturbs least."""
    wall, cpu = time.perf_counter(), children_cpu()
    fn()
    return time.perf_counter() - wall, children_cpu() - cpu


def kimi_startup(python: Path, runs: int) -> dict[str, object]:
    """Medians of `runs` interleaved runs of each command, and openk2 / kimi-cli ratios."""
    samples: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        helps, prompts = help_commands(Path(tmp), python), prompt_commands(Path(tmp), python)
        for _ in range(runs):
            for name, (argv, env) in helps.items():
                samples.setdefault(name, []).append(sample(partial(
                    subprocess.run, argv, env=env, cwd=tmp, check=True, capture_output=True)))
            for name, (argv, env) in prompts.items():
                samples.setdefault(name, []).append(sample(
                    partial(first_prompt, argv, env, Path(tmp) / "ws")))
    wall = {n: round(statistics.median(w for w, _ in t), 3) for n, t in samples.items()}
    cpu = {n: round(statistics.median(c for _, c in t), 3) for n, t in samples.items()}
    pairs = {"help": ("openk2 code --help", "kimi-cli --help"),
             "first_prompt": ("openk2 code (first prompt)", "kimi-cli (first prompt)")}
    return {"runs": runs, "median_wall_s": wall, "median_cpu_s": cpu,
            "ratios_openk2_over_kimi": {
                k: {"wall": round(wall[a] / wall[b], 2), "cpu": round(cpu[a] / cpu[b], 2)}
                for k, (a, b) in pairs.items()}}


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
    ap.add_argument("--startup-runs", type=int, default=5,
                    help="interleaved runs per command for the kimi-cli side by side (median)")
    ap.add_argument("--kimi-venv", type=Path, default=None,
                    help="kimi-cli's venv (default: where setup_kimi_cli.sh puts it)")
    ap.add_argument("--no-kimi", action="store_true", help="skip the kimi-cli side by side")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result: dict[str, object] = {"machine": machine(), "startup": startup(args.repeat)}
    python = None if args.no_kimi else kimi.find_kimi(args.kimi_venv)
    if python is not None:
        result["vs_kimi_cli"] = kimi_startup(python, args.startup_runs)
    elif not args.no_kimi:
        print(f"kimi-cli {kimi.VERSION} not found in {args.kimi_venv or kimi.default_venv()}: "
              f"`{kimi.SETUP}` installs it; openk2's side only", file=sys.stderr)
    result["tools"] = asyncio.run(tools(args.steps, args.repeat))
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
