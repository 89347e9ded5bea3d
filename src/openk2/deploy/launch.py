"""`openk2 deploy --run`: start the engine, wait for its endpoint, check it with `openk2 eval`.

Third-party K2 deployments are known to break tool calling, so after the server answers
`/v1/models` the preflight and tool-call suites run against it (through the `openk2 eval`
command, which keeps this package free of the evals code).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

VERIFY_SUITES = ("preflight", "tool-calls")
POLL_S = 2.0


class LaunchError(RuntimeError):
    """The engine exited or never answered before the deadline."""


def start(argv: list[str]) -> subprocess.Popen[bytes]:
    """Start the engine in the foreground's process group (Ctrl-C reaches it too)."""
    try:
        return subprocess.Popen(argv)
    except FileNotFoundError as exc:
        raise LaunchError(f"{argv[0]!r} not found on PATH; install the engine first") from exc


def wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """Poll `/v1/models` until it lists a model; returns the first model id."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"the engine exited with status {proc.returncode} before "
                              f"{base_url}/models answered")
        try:
            reply = httpx.get(f"{base_url}/models", timeout=5)
            models = reply.json().get("data", []) if reply.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            models = []
        if models:
            return str(models[0]["id"])
        time.sleep(POLL_S)
    raise LaunchError(f"{base_url}/models did not answer within {timeout_s:g} s")


def eval_argv(base_url: str, model: str, out_dir: Path, n: int) -> list[str]:
    """The `openk2 eval` command that checks a fresh endpoint."""
    suites = [arg for s in VERIFY_SUITES for arg in ("--suite", s)]
    return [sys.executable, "-m", "openk2", "eval", "--endpoint",
            f"deployed={base_url},model={model}", *suites, "--n", str(n),
            "--attempts", "2", "--out", str(out_dir)]


def verify(base_url: str, model: str, out_dir: Path, n: int) -> list[str]:
    """Run the preflight and tool-call suites; returns the failures (empty = all passed)."""
    status = subprocess.run(eval_argv(base_url, model, out_dir, n), check=False).returncode
    if status != 0:
        return [f"openk2 eval exited with status {status}"]
    return failures(json.loads((out_dir / "report.json").read_text(encoding="utf-8")))


def failures(report: dict[str, Any]) -> list[str]:
    """One line per suite that did not pass every sample (endpoint errors count as fails)."""
    out = []
    for endpoint in report["endpoints"].values():
        for name, suite in endpoint["suites"].items():
            if suite["passed"] < suite["samples"] or suite["errors"]:
                failed = [k for k, ok in suite.get("extra", {}).get("checks", {}).items()
                          if not ok]
                detail = f"; failed checks: {', '.join(failed)}" if failed else ""
                out.append(f"{name}: {suite['passed']}/{suite['samples']} passed, "
                           f"{suite['errors']} endpoint errors{detail}")
    return out
