"""httpx vs aiohttp with hundreds of requests in flight against a local slow server.

The server (a separate process) answers every `POST /v1/chat/completions` after `--latency`
seconds with a short SSE stream, so the ideal wall-clock for N concurrent requests is the
latency itself; anything above it is client overhead. Also times openk2's
`OpenAICompatProvider` (aiohttp) on the same load.

    .venv/bin/python benchmarks/http_clients.py --requests 300 500 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import time

CHUNKS = [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in ("a", "b", "c")]


def _serve(port: int, latency: float) -> None:
    from aiohttp import web

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(latency)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for chunk in CHUNKS:
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def run_httpx(url: str, n: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one() -> None:
            async with client.stream("POST", url, json=BODY) as resp:
                async for _ in resp.aiter_lines():
                    pass

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start


async def run_aiohttp(url: str, n: int) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(url, json=BODY) as resp:
                async for _ in resp.content:
                    pass

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return time.perf_counter() - start


async def run_provider(base: str, n: int) -> float:
    from openk2.agent.llm import user
    from openk2.agent.llm.openai_compat import OpenAICompatProvider

    provider = OpenAICompatProvider(base, "m")
    start = time.perf_counter()
    await asyncio.gather(*(provider.generate([user("hi")]).collect() for _ in range(n)))
    elapsed = time.perf_counter() - start
    await provider.aclose()
    return elapsed


async def _wait_up(port: int) -> None:
    for _ in range(200):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def main(args: argparse.Namespace) -> None:
    port = _free_port()
    proc = multiprocessing.Process(target=_serve, args=(port, args.latency), daemon=True)
    proc.start()
    await _wait_up(port)
    base = f"http://127.0.0.1:{port}/v1"
    url = f"{base}/chat/completions"
    print(f"latency {args.latency:.1f}s per request (ideal wall-clock = latency)")
    print(f"{'requests':>8} {'httpx':>8} {'aiohttp':>8} {'openk2 provider':>16}")
    try:
        for n in args.requests:
            h = await run_httpx(url, n)
            a = await run_aiohttp(url, n)
            p = await run_provider(base, n)
            print(f"{n:>8} {h:>7.2f}s {a:>7.2f}s {p:>15.2f}s   httpx/aiohttp {h / a:.1f}x")
    finally:
        proc.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[300, 500, 1000])
    parser.add_argument("--latency", type=float, default=1.0)
    asyncio.run(main(parser.parse_args()))
