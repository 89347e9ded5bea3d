"""Runs inside the sandbox: forward 127.0.0.1:PORT to the filtering proxy's unix socket.

The sandbox has its own network namespace (only loopback), so the one path out is this
bridge: it listens on the namespace's loopback, relays each connection to the proxy socket
bound in from outside, and runs the command with `HTTP(S)_PROXY` pointing at itself. It exits
with the command's status.

    python -m openk2.agent.guard.netbridge --socket S --port P -- argv...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


async def _relay(
    socket_path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        up_r, up_w = await asyncio.open_unix_connection(socket_path)
    except OSError:
        writer.close()
        return

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
            dst.write_eof()

    try:
        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
    finally:
        up_w.close()
        writer.close()


async def _main(socket_path: str, port: int, argv: Sequence[str]) -> int:
    relays: set[asyncio.Task[None]] = set()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(_relay(socket_path, reader, writer))
        relays.add(task)
        task.add_done_callback(relays.discard)

    server = await asyncio.start_server(on_connect, host="127.0.0.1", port=port)
    env = dict(os.environ)
    url = f"http://127.0.0.1:{port}"
    env.update({name: url for name in PROXY_VARS})
    env["NO_PROXY"] = env["no_proxy"] = ""
    proc = await asyncio.create_subprocess_exec(*argv, env=env)
    code = await proc.wait()
    server.close()
    await _cancel_quietly(relays)
    return code


async def _cancel_quietly(relays: set[asyncio.Task[None]]) -> None:
    """End the relays the command left open; their cancellation is expected, not an error
    (left to `asyncio.run`, it prints a traceback into the command's output)."""
    for task in relays:
        task.cancel()
    await asyncio.gather(*relays, return_exceptions=True)


def main(args: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netbridge")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--port", type=int, default=3128)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(args)
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("no command to run")
    return asyncio.run(_main(ns.socket, ns.port, command))


if __name__ == "__main__":
    sys.exit(main())
