"""Serving throughput: aggregate generated tokens/s at 1, 8 and 32 concurrent streams.

Starts `openk2 serve --model small` (seeded random weights, bundled tokenizer) in a subprocess,
drives it over HTTP with aiohttp SSE clients, and prints per level: aggregate tokens/s, the ratio
to the 1-stream figure (continuous batching target: >= 8x at 32), time to first token, and
tokens per CPU-second of the server process (with its ratio): on a machine shared with other
jobs, wall figures swing with the load while the CPU-time figure stays close to what the same
server does on a quiet machine.
Every stream asks for exactly `--tokens` tokens (ignore_eos), instant mode, default sampling.
Levels are run `--repeat` times, interleaved; the best run of each level is reported with the
range over runs (shared machines swing by tens of percent between runs).

    .venv/bin/python benchmarks/serve.py [--model small] [--tokens 64] [--levels 1,8,32]
                                         [--repeat 3] [--device cpu] [--dtype float32]
                                         [--quant none|int8|int4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp


@dataclass
class StreamResult:
    ttft_s: float
    tokens: int


@dataclass
class Level:
    streams: int
    wall_s: float
    results: list[StreamResult]
    cpu_s: float = float("nan")
    """CPU time the server process used during the level (all its threads)."""

    @property
    def tokens_per_s(self) -> float:
        return sum(r.tokens for r in self.results) / self.wall_s

    @property
    def tokens_per_cpu_s(self) -> float:
        """Tokens per server CPU-second: what a quiet machine's wall figure approaches (the
        server never waits for a core), and much less sensitive to other jobs than wall time."""
        return sum(r.tokens for r in self.results) / self.cpu_s

    @property
    def ttft_ms(self) -> tuple[float, float]:
        """(median, max) time to first token in milliseconds."""
        ttfts = [r.ttft_s * 1000 for r in self.results]
        return statistics.median(ttfts), max(ttfts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from openk2.cli import main; main()", "serve",
           "--model", args.model, "--port", str(port), "--max-num-seqs", "64",
           "--max-model-len", "2048", "--device", args.device, "--dtype", args.dtype,
           "--quant", args.quant,
           "--served-model-name", "bench"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
            try:
                async with http.get(url + "/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError("server did not become healthy")


async def one_stream(http: aiohttp.ClientSession, url: str, i: int, tokens: int) -> StreamResult:
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": f"Stream {i}: tell me a long story."}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
        "thinking": {"type": "disabled"},
    }
    start = time.monotonic()
    ttft, produced = None, 0
    async with http.post(url + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            if ttft is None and any(c["delta"].get("content") for c in chunk["choices"]):
                ttft = time.monotonic() - start
            if chunk.get("usage"):
                produced = chunk["usage"]["completion_tokens"]
    return StreamResult(ttft if ttft is not None else time.monotonic() - start, produced)


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process (Linux /proc); NaN elsewhere."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_level(url: str, streams: int, tokens: int, server_pid: int | None = None) -> Level:
    connector = aiohttp.TCPConnector(limit=0)
    cpu_start = process_cpu_s(server_pid) if server_pid else float("nan")
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.monotonic()
        results = await asyncio.gather(*(one_stream(http, url, i, tokens) for i in range(streams)))
        wall = time.monotonic() - start
    cpu = process_cpu_s(server_pid) - cpu_start if server_pid else float("nan")
    return Level(streams, wall, list(results), cpu)


async def main_async(args: argparse.Namespace) -> dict[int, list[Level]]:
    port = free_port()
    proc = start_server(args, port)
    url = f"http://127.0.0.1:{port}"
    runs: dict[int, list[Level]] = {n: [] for n in args.levels}
    try:
        await wait_healthy(url, proc)
        await run_level(url, 2, 8)  # warm-up: first-call allocations, thread start
        for _ in range(args.repeat):
            for n in args.levels:
                runs[n].append(await run_level(url, n, args.tokens, proc.pid))
        return runs
    finally:
        proc.terminate()
        proc.wait(30)


def report(runs: dict[int, list[Level]], args: argparse.Namespace) -> None:
    best = {n: max(levels, key=lambda lv: lv.tokens_per_s) for n, levels in runs.items()}
    best_cpu = {n: max(levels, key=lambda lv: lv.tokens_per_cpu_s) for n, levels in runs.items()}
    base, base_cpu = (d[args.levels[0]] for d in (best, best_cpu))
    print(f"model={args.model} dtype={args.dtype} quant={args.quant} "
          f"tokens/stream={args.tokens} device={args.device} "
          f"cpus={os.cpu_count()} repeat={args.repeat} load={os.getloadavg()[0]:.1f}")  # fmt: skip
    print("| streams | aggregate tok/s, best (range) | ratio to 1 stream "
          "| tok per server CPU-s, best | ratio | TTFT median / max ms |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for n, level in best.items():
        rates = [lv.tokens_per_s for lv in runs[n]]
        med, worst = level.ttft_ms
        cpu_rate = best_cpu[n].tokens_per_cpu_s
        cpu_ratio = cpu_rate / base_cpu.tokens_per_cpu_s
        print(f"| {n} | {level.tokens_per_s:.1f} ({min(rates):.1f}-{max(rates):.1f}) "
              f"| {level.tokens_per_s / base.tokens_per_s:.2f}x | {cpu_rate:.1f} "
              f"| {cpu_ratio:.2f}x | {med:.0f} / {worst:.0f} |")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small", help="preset or checkpoint directory")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per stream")
    parser.add_argument("--levels", default="1,8,32", help="comma-separated stream counts")
    parser.add_argument("--device", default="cpu", help="torch device for the server")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16")
    parser.add_argument("--quant", default="none", help="none, int8 or int4 (with bfloat16)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per level")
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    return args


if __name__ == "__main__":
    arguments = parse_args()
    report(asyncio.run(main_async(arguments)), arguments)
