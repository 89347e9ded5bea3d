"""kimi-cli 1.52.0 (PyPI), the reference coding agent, driven headless and offline.

The side-by-side benchmarks (`code_safety.py`, `code_harness.py`) run it next to `openk2 code`.
It needs Python >= 3.12, so it lives in its own venv: `bash benchmarks/setup_kimi_cli.sh`.
What this module relies on, learnt by reading kimi-cli 1.52.0 (none of its code is used here):

- 1.52.0 is the package's last release. Its `kimi` console script only prints a deprecation
  notice, whatever the arguments (`--help` included), and with no arguments downloads and runs
  the successor's installer, so it is never run bare. The Typer CLI it replaced still ships as
  `kimi_cli.__main__.run_original_cli(argv)`; that is the agent run here.
- Offline model: the `_scripted_echo` provider type (kosong's `ScriptedEchoChatProvider`)
  replays one script per model call from the JSON list named by `$KIMI_SCRIPTED_ECHO_SCRIPTS`;
  a script is lines of its echo DSL (`tool_call: {...}`, `text: ...`).
- Approvals: `Shell` asks before every command unless the run auto-approves. `--print`
  auto-approves (print mode is "afk"), so does `--yolo`. Over `--wire` (JSON-RPC on stdio,
  after `initialize`) each ask is a `request` the client answers; `default` here answers no.
- State goes to `$KIMI_SHARE_DIR` and the config is `--config-file`; `telemetry = false` and
  `KIMI_CLI_NO_AUTO_UPDATE=1` keep it from reporting or updating.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = "1.52.0"
SETUP = "bash benchmarks/setup_kimi_cli.sh"
LAUNCH = ("import sys; from kimi_cli.__main__ import run_original_cli; "
          "raise SystemExit(run_original_cli(sys.argv[1:]))")
MODES = ("default", "print", "yolo")
"""default: interactive approvals, every ask answered no (over --wire); print: `--print`
(headless, auto-approves); yolo: `--yolo` (over --wire, so any ask would still be seen)."""
WIRE_PROTOCOL = "1.10"


def default_venv() -> Path:
    """Where `setup_kimi_cli.sh` puts the venv (same `OPENK2_BENCH_OPT` rule)."""
    opt = os.environ.get("OPENK2_BENCH_OPT") or Path.home() / ".local/opt/openk2-bench"
    return Path(opt) / "kimi-venv"


def find_kimi(venv: Path | None = None) -> Path | None:
    """The venv's python if it holds kimi-cli VERSION, else None."""
    python = (venv or default_venv()) / "bin" / "python"
    if not python.is_file():
        return None
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('kimi-cli'))"]
    done = subprocess.run(probe, capture_output=True, text=True, check=False)
    return python if done.stdout.strip() == VERSION else None


def kimi_argv(python: Path, *args: str) -> list[str]:
    """The original kimi-cli CLI with `args` (never the deprecation-gated `kimi` script)."""
    return [str(python), "-c", LAUNCH, *args]


def echo_scripts(tool: str, arguments: dict[str, Any], answer: str = "done") -> list[str]:
    """Two model turns in the echo DSL: one call of `tool`, then a plain answer."""
    call = {"id": "probe-1", "name": tool, "arguments": json.dumps(arguments)}
    return [f"tool_call: {json.dumps(call)}", f"text: {answer}"]


def config() -> dict[str, Any]:
    """A kimi-cli config whose only model is the scripted one."""
    return {
        "default_model": "scripted",
        "telemetry": False,
        "models": {"scripted": {"provider": "scripted", "model": "scripted",
                                "max_context_size": 131072}},
        "providers": {"scripted": {"type": "_scripted_echo", "base_url": "", "api_key": "none"}},
    }


@dataclass
class KimiState:
    """A private kimi-cli home: config, scripts and share dir under `root`, HOME = `home`."""

    root: Path
    home: Path

    def prepare(self, scripts: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "config.json").write_text(json.dumps(config()))
        (self.root / "scripts.json").write_text(json.dumps(scripts))

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "KIMI_SHARE_DIR": str(self.root / "share"),
                "KIMI_SCRIPTED_ECHO_SCRIPTS": str(self.root / "scripts.json"),
                "KIMI_CLI_NO_AUTO_UPDATE": "1"}

    def args(self) -> list[str]:
        return ["--config-file", str(self.root / "config.json")]


@dataclass
class KimiRun:
    """What one kimi-cli run did: asks shown, tool results (is_error, text the model saw)."""

    approvals: int = 0
    results: list[tuple[bool, str]] = field(default_factory=list)
    returncode: int | None = None
    finished: bool = False

    @property
    def output(self) -> str:
        return "\n".join(text for _, text in self.results)

    def outcome(self) -> str:
        """escalated (a user was asked), ran (it executed), or error (no tool result)."""
        if self.approvals:
            return "escalated"
        return "ran" if self.results else "error"


def _text(content: object) -> str:
    """Text of an OpenAI-style content: a string or a list of `{"type": "text"}` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def parse_print(stdout: str) -> KimiRun:
    """A `--print --output-format stream-json` transcript: one message per line."""
    run = KimiRun(finished=True)
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        if message.get("role") == "tool":
            text = _text(message.get("content"))
            run.results.append(("<system>ERROR:" in text, text))
    return run


def wire_step(run: KimiRun, message: dict[str, Any]) -> dict[str, Any] | None:
    """Account one wire message into `run`; the reply to send, if it is a request."""
    params = message.get("params") or {}
    if message.get("method") == "request":
        if params.get("type") != "ApprovalRequest":
            return {"jsonrpc": "2.0", "id": message["id"],
                    "error": {"code": -32601, "message": "not supported by this client"}}
        run.approvals += 1
        return {"jsonrpc": "2.0", "id": message["id"],
                "result": {"request_id": message["id"], "response": "reject"}}
    if message.get("method") == "event" and params.get("type") == "ToolResult":
        value = params["payload"]["return_value"]
        text = "\n".join(t for t in (value.get("message", ""), _text(value.get("output"))) if t)
        run.results.append((bool(value.get("is_error")), text))
    if message.get("id") == "prompt":
        run.finished = True
    return None


def run_print(python: Path, state: KimiState, ws: Path, timeout: float) -> KimiRun:
    argv = kimi_argv(python, "--print", "--output-format", "stream-json", *state.args(),
                     "-p", "run the probe")
    done = subprocess.run(argv, cwd=ws, env=state.env(), capture_output=True, text=True,
                          timeout=timeout, check=False)
    run = parse_print(done.stdout)
    run.returncode = done.returncode
    return run


def run_wire(python: Path, state: KimiState, ws: Path, yolo: bool, timeout: float) -> KimiRun:
    """One prompt over kimi-cli's wire protocol, answering every approval request with no."""
    argv = kimi_argv(python, "--wire", *(["--yolo"] if yolo else []), *state.args())
    proc = subprocess.Popen(argv, cwd=ws, env=state.env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    run = KimiRun()
    try:
        _send(proc, {"jsonrpc": "2.0", "method": "initialize", "id": "init",
                     "params": {"protocol_version": WIRE_PROTOCOL}})
        _send(proc, {"jsonrpc": "2.0", "method": "prompt", "id": "prompt",
                     "params": {"user_input": "run the probe"}})
        assert proc.stdout is not None
        for line in proc.stdout:
            reply = wire_step(run, json.loads(line)) if line.startswith("{") else None
            if reply is not None:
                _send(proc, reply)
            if run.finished:
                break
        assert proc.stdin is not None
        proc.stdin.close()
        run.returncode = proc.wait(timeout)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return run


def _send(proc: subprocess.Popen[str], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(message) + "\n")
    proc.stdin.flush()


def run_probe(python: Path, mode: str, state: KimiState, ws: Path, tool: str,
              arguments: dict[str, Any], timeout: float = 120) -> KimiRun:
    """kimi-cli in `mode` (one of MODES) on a model that makes one `tool` call, then answers."""
    state.prepare(echo_scripts(tool, arguments))
    if mode == "print":
        return run_print(python, state, ws, timeout)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    return run_wire(python, state, ws, yolo=mode == "yolo", timeout=timeout)
