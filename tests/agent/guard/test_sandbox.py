"""The bubblewrap sandbox really blocks: writes outside, secrets in HOME, the network."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from openk2.agent.guard import (
    Sandbox,
    SandboxConfig,
    SandboxUnavailable,
    Unsandboxed,
    open_sandbox,
    probe,
)


def _bwrap_reason() -> str | None:
    try:
        probe()
    except SandboxUnavailable as exc:
        return exc.reason
    return None


needs_bwrap = pytest.mark.skipif(
    _bwrap_reason() is not None, reason=f"bubblewrap cannot run here: {_bwrap_reason()}"
)


def run(
    sandbox: Sandbox, script: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = sandbox.wrap(["bash", "-c", script])
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=sandbox.env(env))


@pytest.fixture
def sandbox(workspace: Path, home: Path) -> Sandbox:
    return Sandbox.open(SandboxConfig(workspace=workspace, home=home))


@needs_bwrap
def test_writes_only_in_the_workspace(sandbox: Sandbox, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    scratch = f"/tmp/openk2-sandbox-{uuid.uuid4().hex}"
    done = run(
        sandbox,
        f"echo in > inside.txt; echo out > {outside}/f; echo x > /etc/openk2-probe; "
        f"echo t > {scratch} && cat {scratch}",
    )
    assert (workspace / "inside.txt").read_text() == "in\n"
    assert not (outside / "f").exists()
    assert not Path("/etc/openk2-probe").exists()
    assert "Read-only file system" in done.stderr
    assert done.stdout.strip() == "t"  # a private /tmp works
    assert not Path(scratch).exists()


@needs_bwrap
def test_home_secrets_not_mounted(workspace: Path, home: Path) -> None:
    project = home / "project"  # the usual layout: the workspace inside $HOME
    project.mkdir()
    sandbox = Sandbox.open(SandboxConfig(workspace=project, home=home))
    done = run(sandbox, "cat ~/.ssh/id_rsa ~/.aws/credentials ~/.env ../.env; ls -a ~; echo ok > f")
    assert "CANARY" not in done.stdout + done.stderr
    assert "No such file" in done.stderr
    assert (project / "f").read_text() == "ok\n"


@needs_bwrap
def test_dotenv_above_a_mounted_workspace_is_masked(tmp_path: Path, home: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "ws").mkdir(parents=True)
    (tree / ".env").write_text("SECRET=ANCESTOR-CANARY\n")
    sandbox = Sandbox.open(SandboxConfig(workspace=tree / "ws", home=home, readable=[tree]))
    done = run(sandbox, "cat ../.env; ls ..")
    assert "ANCESTOR-CANARY" not in done.stdout
    assert "ws" in done.stdout  # the rest of the tree is readable


@needs_bwrap
def test_workspace_dotenv_masked(workspace: Path, home: Path) -> None:
    (workspace / ".env").write_text("TOKEN=WS-CANARY\n")
    (workspace / "src" / "prod.env").write_text("TOKEN=WS-CANARY\n")
    (workspace / ".env.example").write_text("TOKEN=changeme\n")
    sandbox = Sandbox.open(SandboxConfig(workspace=workspace, home=home))
    done = run(sandbox, "grep -r TOKEN . ; cat .env src/prod.env; echo x >> .env")
    assert "WS-CANARY" not in done.stdout
    assert "changeme" in done.stdout  # templates stay readable
    assert (workspace / ".env").read_text() == "TOKEN=WS-CANARY\n"


@needs_bwrap
def test_git_hooks_and_config_read_only(workspace: Path, home: Path) -> None:
    (workspace / ".git" / "config").write_text("[core]\n")
    sandbox = Sandbox.open(SandboxConfig(workspace=workspace, home=home))
    done = run(sandbox, "echo evil > .git/hooks/pre-commit; echo evil >> .git/config; echo ok")
    assert (workspace / ".git" / "hooks").is_dir()  # created empty so none can be planted
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    assert (workspace / ".git" / "config").read_text() == "[core]\n"
    assert done.stdout.strip() == "ok"


@needs_bwrap
def test_secret_environment_dropped(sandbox: Sandbox) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "GITHUB_TOKEN": "ghp-CANARY",
        "AWS_ACCESS_KEY_ID": "AK",
        "KEEP": "1",
    }
    done = run(sandbox, "env", env)
    assert "CANARY" not in done.stdout and "AWS_ACCESS_KEY_ID" not in done.stdout
    assert "KEEP=1" in done.stdout


class _Sink(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        _Sink.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"SINK-REACHED")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def sink() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Sink.hits.clear()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@needs_bwrap
def test_network_off(sandbox: Sandbox, sink: int) -> None:
    connect = f"exec 3<>/dev/tcp/127.0.0.1/{sink}"
    request = f"{connect} && printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
    host = subprocess.run(["bash", "-c", request], capture_output=True, text=True, timeout=10)
    assert "SINK-REACHED" in host.stdout and _Sink.hits == ["/probe"]  # the sink works
    _Sink.hits.clear()
    inside = run(sandbox, request)
    assert inside.returncode != 0
    assert "SINK-REACHED" not in inside.stdout
    assert _Sink.hits == []


def test_missing_bwrap_refuses_with_reason(workspace: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="not installed"):
        Sandbox.open(SandboxConfig(workspace=workspace, bwrap="openk2-no-such-bwrap"))


def test_failing_bwrap_refuses_with_its_error(workspace: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake-bwrap"
    fake.write_text("#!/bin/sh\necho 'setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(SandboxUnavailable, match="uid map: Permission denied"):
        open_sandbox(SandboxConfig(workspace=workspace, bwrap=str(fake)))


def test_no_sandbox_is_explicit_and_warns(workspace: Path) -> None:
    config = SandboxConfig(workspace=workspace, bwrap="openk2-no-such-bwrap")
    unsandboxed = open_sandbox(config, no_sandbox=True)
    assert isinstance(unsandboxed, Unsandboxed) and not unsandboxed.enabled
    assert unsandboxed.banner and "--no-sandbox" in unsandboxed.banner
    assert unsandboxed.wrap(["true"]) == ["true"]


@needs_bwrap
def test_children_are_confined_and_do_not_outlive_the_command(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = f"sleep 7.{uuid.uuid4().int % 10**6}"
    script = f"setsid sh -c 'echo x > {outside}/f' ; nohup {marker} >/dev/null 2>&1 & echo started"
    done = run(sandbox, script)
    assert done.stdout.strip() == "started"
    assert not (outside / "f").exists()
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # the PID namespace died with the command


@needs_bwrap
def test_system_secrets_masked(sandbox: Sandbox) -> None:
    host = Path("/etc/shadow")
    script = "cat /etc/shadow 2>/dev/null | wc -c; ls -A /etc/ssl/private 2>/dev/null | wc -l; ls /"
    done = run(sandbox, f"{script}; grep CapEff /proc/self/status")
    lines = done.stdout.split()
    assert lines[0] == "0" and lines[1] == "0"
    assert "CapEff:" in lines and lines[-1] == "0000000000000000"  # no capabilities, even as root
    assert "root" not in lines and "home" not in lines and "run" not in lines
    if host.exists() and os.access(host, os.R_OK):
        assert host.stat().st_size > 0  # it is the mask that makes it empty
