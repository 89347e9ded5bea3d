"""The filtering proxy: the sandbox's only way out when the config allowlists hosts.

Commands in the sandbox have no network namespace route at all; when hosts are allowlisted,
`netbridge` (inside) forwards 127.0.0.1:PORT to this proxy's unix socket (outside), and the
proxy serves HTTP `CONNECT host:port` (HTTPS) and absolute-URI HTTP requests only to allowed
hosts. Everything else gets `403` and an audit callback. Host patterns: `pypi.org` (ports 80
and 443), `*.pythonhosted.org` (any subdomain), `example.com:8080` (that port only).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORTS = (80, 443)
MAX_HEADER_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 15.0

Decide = Callable[[str, int, bool], None]
"""Called for every request: host, port, allowed."""


@dataclass(frozen=True, slots=True)
class HostRule:
    """One allowlist entry."""

    pattern: str
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        host, sep, port = entry.strip().lower().rpartition(":")
        if not sep or not port.isdigit():
            return cls(entry.strip().lower(), None)
        return cls(host, int(port))

    def allows(self, host: str, port: int) -> bool:
        ports = (self.port,) if self.port is not None else DEFAULT_PORTS
        return port in ports and (host == self.pattern or fnmatch(host, self.pattern))


class FilteringProxy:
    """An HTTP proxy on a unix socket that only reaches allowlisted hosts."""

    def __init__(self, allowed_hosts: Sequence[str], *, on_decision: Decide | None = None) -> None:
        if not allowed_hosts:
            raise ValueError("a filtering proxy needs at least one allowed host")
        self.rules = tuple(HostRule.parse(h) for h in allowed_hosts)
        self.on_decision = on_decision
        self.socket_path = Path(tempfile.mkdtemp(prefix="openk2-net-")) / "proxy.sock"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    def allows(self, host: str, port: int) -> bool:
        return any(r.allows(host.lower().rstrip("."), port) for r in self.rules)

    # ---- lifecycle (a thread with its own loop, so synchronous shells can use it) --------

    def start(self) -> FilteringProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError("the filtering proxy did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._handle, path=str(self.socket_path))
        )
        os.chmod(self.socket_path, 0o666)
        ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        if self._loop is None or self._server is None:
            return
        server, loop = self._server, self._loop

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()
        self._loop = self._server = None
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
            self.socket_path.parent.rmdir()

    # ---- one client ----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        try:
            await self._serve(head, reader, writer)
        except (ConnectionError, OSError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _serve(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, _, rest = head.partition(b"\r\n")
        parts = request_line.decode("latin-1").split()
        target = _target(parts)
        if target is None:
            return await _reply(writer, 400, "bad proxy request")
        host, port, forward = target
        allowed = self.allows(host, port)
        if self.on_decision is not None:
            self.on_decision(host, port, allowed)
        if not allowed:
            return await _reply(writer, 403, f"{host}:{port} is not in the network allowlist")
        upstream_r, upstream_w = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
        )
        if parts[0].upper() == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream_w.write(_origin_form(parts, forward) + b"\r\n" + rest)
        await writer.drain()
        await _pipe_both(reader, writer, upstream_r, upstream_w)


def _target(parts: list[str]) -> tuple[str, int, str] | None:
    """(host, port, path) of `CONNECT host:port` or `GET http://host[:port]/path`."""
    if len(parts) != 3:
        return None
    method, uri = parts[0].upper(), parts[1]
    if method == "CONNECT":
        host, _, port = uri.rpartition(":")
        return (host.strip("[]"), int(port), "") if port.isdigit() and host else None
    url = urlsplit(uri)
    if url.scheme != "http" or not url.hostname:
        return None
    path = url.path or "/"
    return url.hostname, url.port or 80, path + (f"?{url.query}" if url.query else "")


def _origin_form(parts: list[str], path: str) -> bytes:
    return f"{parts[0]} {path} {parts[2]}".encode("latin-1")


async def _reply(writer: asyncio.StreamWriter, status: int, text: str) -> None:
    body = text.encode()
    reason = {400: "Bad Request", 403: "Forbidden"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while chunk := await src.read(65536):
            dst.write(chunk)
            await dst.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            dst.write_eof()


async def _pipe_both(
    r1: asyncio.StreamReader,
    w1: asyncio.StreamWriter,
    r2: asyncio.StreamReader,
    w2: asyncio.StreamWriter,
) -> None:
    try:
        await asyncio.gather(_pipe(r1, w2), _pipe(r2, w1))
    finally:
        w2.close()
