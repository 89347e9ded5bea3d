"""Proxy overhead of `openk2 route` against LiteLLM's proxy, on the same fake upstream, in one run.

A fake OpenAI-compatible upstream (its own process) answers at once, so whatever a proxy adds
is the proxy. Three targets get the same load: the upstream called directly (the
reference), `openk2 route` (one deployment, `ordered`), and LiteLLM's proxy
(`litellm --config`, installed into a separate venv so it cannot disturb the project's);
both proxies check the caller's key (LiteLLM's master key, an openk2 `keys:` entry):

- latency: sequential requests (one in flight), plain and streamed: p50 and p99 of each
  target, and the p50 it adds over the direct call;
- throughput: requests/s with `--concurrency` requests in flight.

`--learned` adds two more openk2 targets whose group uses the `learned` strategy (a win-score
router between two deployments of the same upstream), with hashed n-gram features and with
all-MiniLM-L6-v2 sentence embeddings (the `embed` extra): what scoring each prompt costs.

    python3 -m venv .bench-venv && .bench-venv/bin/pip install 'litellm[proxy]'
    PYTHONPATH=src .venv/bin/python benchmarks/route.py --requests 400 --concurrency 32

Without a LiteLLM binary the LiteLLM column is left out (and said so).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

KEY = "sk-bench-" + "5f0c2a9e" * 6
"""The callers' key both proxies check (LiteLLM's master key, an openk2 `keys:` entry)."""
USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
ANSWER = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "a b c"},
                       "finish_reason": "stop"}], "usage": USAGE}
CHUNKS = [{"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
           "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
          for w in ("a", "b", "c")]


def _upstream(port: int) -> None:
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.json_response(ANSWER)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in CHUNKS:
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {**CHUNKS[0], "choices": [], "usage": USAGE}
        await resp.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        return resp

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def _openk2(port: int, upstream: str, features: str | None = None) -> None:
    """The proxy: one deployment, `ordered`; or with `features`, a `learned` group."""
    from openk2.route.config import parse_config
    from openk2.route.proxy import Router, serve

    os.environ["BENCH_KEY"] = KEY
    deployments = [{"name": n, "url": upstream, "model": "m", "price_in": p, "price_out": 2 * p}
                   for n, p in (("up", 1.0), ("strong", 10.0))]
    group: dict[str, Any] = {"deployments": ["up"], "strategy": "ordered"}
    if features is not None:
        group = {"deployments": ["up", "strong"], "strategy": "learned",
                 "model": _learned_model(features)}
    cfg = parse_config({"deployments": deployments, "groups": {"m": group},
                        "keys": [{"name": "bench", "env": "BENCH_KEY"}]})
    serve(Router(cfg), "127.0.0.1", port)


def _learned_model(features: str) -> str:
    """A win-score model (weak = `up`) fitted on a few prompts, in a temporary file."""
    from openk2.route.learned import train

    short = [{"messages": [{"role": "user", "content": t}]} for t in ("hi", "hello", "2+2?")]
    long = [{"messages": [{"role": "user", "content": "Plan a week-long trip with " + t}]}
            for t in ("trains", "hotels", "museums")]
    model = train([(b, 1.0) for b in short] + [(b, 0.0) for b in long], weak="up",
                  strong="strong", features=features)
    path = Path(tempfile.mkdtemp()) / f"router-{features}.json"
    model.save(path)
    return str(path)


def _litellm(binary: Path, port: int, upstream: str, workdir: Path) -> subprocess.Popen[bytes]:
    cfg = workdir / "litellm.yaml"
    cfg.write_text(json.dumps({  # JSON is YAML
        "model_list": [{"model_name": "m", "litellm_params": {
            "model": "openai/m", "api_base": upstream, "api_key": "sk-fake"}}],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {"master_key": KEY, "disable_spend_logs": True}}))
    env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list (offline)
           "PYTHONPATH": ""}
    return subprocess.Popen([str(binary), "--config", str(cfg), "--host", "127.0.0.1",
                             "--port", str(port), "--num_workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_ready(base: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.post(f"{base}/chat/completions", json=_body(False),
                                     headers={"Authorization": f"Bearer {KEY}"}) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{base} did not come up within {timeout_s:.0f} s")


def _body(stream: bool) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


SELF_REPORTED: list[float] = []
"""LiteLLM's own `x-litellm-overhead-duration-ms` of each sequential plain answer."""


async def _one(http: aiohttp.ClientSession, base: str, stream: bool) -> float:
    start = time.perf_counter()
    async with http.post(f"{base}/chat/completions", json=_body(stream),
                         headers={"Authorization": f"Bearer {KEY}"}) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{base}: HTTP {resp.status}")
        own = resp.headers.get("x-litellm-overhead-duration-ms")
    if own is not None and not stream:
        SELF_REPORTED.append(float(own))
    return time.perf_counter() - start


async def _sequential(base: str, n: int, stream: bool) -> list[float]:
    async with aiohttp.ClientSession() as http:
        for _ in range(20):  # warm-up: connections, caches
            await _one(http, base, stream)
        return [await _one(http, base, stream) for _ in range(n)]


async def _throughput(base: str, n: int, concurrency: int) -> float:
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as http:
        gate = asyncio.Semaphore(concurrency)

        async def bounded() -> None:
            async with gate:
                await _one(http, base, False)

        await asyncio.gather(*(bounded() for _ in range(50)))
        start = time.perf_counter()
        await asyncio.gather(*(bounded() for _ in range(n)))
        return n / (time.perf_counter() - start)


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def _measure(targets: dict[str, str], n: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, base in targets.items():
        row: dict[str, Any] = {}
        for stream in (False, True):
            lat = await _sequential(base, n, stream)
            key = "stream" if stream else "plain"
            row[key] = {"p50_ms": 1e3 * _pct(lat, 0.5), "p99_ms": 1e3 * _pct(lat, 0.99)}
        if SELF_REPORTED:
            row["self_reported_overhead_p50_ms"] = _pct(SELF_REPORTED, 0.5)
            SELF_REPORTED.clear()
        row["req_per_s"] = await _throughput(base, 4 * n, concurrency)
        out[name] = row
    return out


def _table(results: dict[str, Any]) -> str:
    """Absolute percentiles per target, the p50 it adds over the direct call, and req/s
    (added p99 is not a difference of two tails, which noise can make negative)."""
    direct = results["direct"]
    lines = ["| target | plain p50 / p99 ms | stream p50 / p99 ms | added p50 ms plain / stream "
             "| req/s |", "|---|---|---|---|---|"]
    for name, row in results.items():
        plain, stream = row["plain"], row["stream"]
        added = [row[k]["p50_ms"] - direct[k]["p50_ms"] for k in ("plain", "stream")]
        lines.append(f"| {name} | {plain['p50_ms']:.2f} / {plain['p99_ms']:.2f} | "
                     f"{stream['p50_ms']:.2f} / {stream['p99_ms']:.2f} | "
                     f"{added[0]:.2f} / {added[1]:.2f} | {row['req_per_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="sequential requests per mode")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--litellm", type=Path, default=Path(".bench-venv/bin/litellm"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--learned", action="store_true",
                        help="also openk2 route with the learned strategy (hashed, embedding)")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    up_port, ok_port, ll_port = _free_port(), _free_port(), _free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    procs = [ctx.Process(target=_upstream, args=(up_port,), daemon=True),
             ctx.Process(target=_openk2, args=(ok_port, upstream), daemon=True)]
    targets = {"direct": upstream, "openk2 route": f"http://127.0.0.1:{ok_port}/v1"}
    for features in ("hashed", "embedding") if args.learned else ():
        port = _free_port()
        procs.append(ctx.Process(target=_openk2, args=(port, upstream, features), daemon=True))
        targets[f"openk2 route (learned, {features})"] = f"http://127.0.0.1:{port}/v1"
    for p in procs:
        p.start()
    litellm = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.litellm.exists():
            litellm = _litellm(args.litellm, ll_port, upstream, Path(tmp))
            targets["litellm proxy"] = f"http://127.0.0.1:{ll_port}/v1"
        else:
            print(f"LiteLLM not found at {args.litellm}: its column is left out", file=sys.stderr)
        try:
            for base in targets.values():
                asyncio.run(_wait_ready(base, 180))
            results = asyncio.run(_measure(targets, args.requests, args.concurrency))
        finally:
            if litellm is not None:
                litellm.terminate()
                litellm.wait(20)
            for p in procs:
                p.terminate()
    print(_table(results))
    for name, row in results.items():
        if "self_reported_overhead_p50_ms" in row:
            print(f"{name}: self-reported overhead p50 "
                  f"{row['self_reported_overhead_p50_ms']:.2f} ms (x-litellm-overhead-duration-ms)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
