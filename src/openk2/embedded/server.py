"""Start `openk2 serve` as a child process for a local job (demo, chat, evaluation) and stop it.

A separate process keeps the engine's CPU threads and the client's event loop apart, and is
exactly what a user runs; the child is killed with its job, whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from openk2.embedded import EMBEDDED


@dataclass(frozen=True, slots=True)
class LocalServer:
    """A running child server."""

    base_url: str
    """OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
    model: str
    """The model id it serves."""


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def local_server(
    model: str = EMBEDDED,
    *,
    served_name: str = "openk2-embedded",
    timeout_s: float = 120.0,
    extra_args: tuple[str, ...] = (),
) -> Iterator[LocalServer]:
    """Run `openk2 serve --model MODEL` on a free port until the block exits."""
    port = free_port()
    cmd = [sys.executable, "-m", "openk2", "serve", "--model", model, "--port", str(port),
           "--served-model-name", served_name, *extra_args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                             text=True)
    try:
        _wait_healthy(child, f"http://127.0.0.1:{port}/health", timeout_s)
        yield LocalServer(f"http://127.0.0.1:{port}/v1", served_name)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _wait_healthy(child: subprocess.Popen[str], url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            err = child.stderr.read() if child.stderr else ""
            raise RuntimeError(f"the server exited with code {child.returncode}:\n{err[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server did not become healthy within {timeout_s:.0f} s ({url})")
