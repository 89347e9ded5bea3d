"""Network allowlist: only listed hosts, only through the filtering proxy."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from test_sandbox import needs_bwrap

from openk2.agent.guard import Sandbox, SandboxConfig
from openk2.agent.guard.netproxy import FilteringProxy, HostRule


@pytest.mark.parametrize(
    "entry, host, port, allowed",
    [
        ("pypi.org", "pypi.org", 443, True),
        ("pypi.org", "pypi.org", 80, True),
        ("pypi.org", "pypi.org", 22, False),
        ("pypi.org", "evil-pypi.org", 443, False),
        ("*.pythonhosted.org", "files.pythonhosted.org", 443, True),
        ("*.pythonhosted.org", "pythonhosted.org.evil.com", 443, False),
        ("localhost:8080", "localhost", 8080, True),
        ("localhost:8080", "localhost", 443, False),
    ],
)
def test_host_rules(entry: str, host: str, port: int, allowed: bool) -> None:
    assert HostRule.parse(entry).allows(host, port) is allowed


def test_needs_hosts() -> None:
    with pytest.raises(ValueError):
        FilteringProxy([])


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ALLOWED-PAGE")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def page() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@needs_bwrap
def test_only_allowlisted_hosts_through_the_proxy(workspace: Path, home: Path, page: int) -> None:
    seen: list[tuple[str, int, bool]] = []
    config = SandboxConfig(workspace=workspace, home=home, allowed_hosts=[f"localhost:{page}"])
    script = (
        f"curl -s -m 5 http://localhost:{page}/; echo; "
        f"curl -s -m 5 http://127.0.0.1:{page}/; echo; "
        f"curl -s -m 5 --noproxy '*' http://localhost:{page}/ || echo direct-failed"
    )
    with Sandbox.open(config, on_network=lambda h, p, a: seen.append((h, p, a))) as sandbox:
        argv = sandbox.wrap(["bash", "-c", script])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=sandbox.env())
        socket = sandbox.config.network_socket
    lines = done.stdout.splitlines()
    assert lines[0] == "ALLOWED-PAGE"
    assert "not in the network allowlist" in lines[1]
    assert lines[2] == "direct-failed"  # no way around the proxy
    assert seen == [("localhost", page, True), ("127.0.0.1", page, False)]
    assert socket is not None and not socket.exists()  # closed with the sandbox
