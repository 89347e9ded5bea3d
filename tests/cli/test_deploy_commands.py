"""`openk2 deploy` through the CLI: printed plans, refusals, and --run with a fake engine."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from openk2.deploy.engines import VLLM

CLI = [sys.executable, "-c", "from openk2.cli import main; main()", "deploy"]

FAKE_VLLM = '''#!{python}
"""Records its argv; with FAKE_SERVE, answers /v1/models on --port until killed."""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
open(os.environ["FAKE_ARGV"], "w").write(json.dumps(sys.argv[1:]))
if not os.environ.get("FAKE_SERVE"):
    sys.exit(int(os.environ.get("FAKE_RC", "0")))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"data": [{{"id": "kimi"}}]}}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
port = int(sys.argv[sys.argv.index("--port") + 1])
srv = HTTPServer(("127.0.0.1", port), H)
srv.timeout = 0.2
for _ in range(int(os.environ["FAKE_SERVE"])):
    srv.handle_request()
'''


def _deploy(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    full = {k: v for k, v in os.environ.items() if not k.startswith("OPENK2_")} | (env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=full,
                          timeout=timeout, check=False)


def _fake_engine(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_ARGV": str(tmp_path / "argv.json")}


def test_prints_the_plan_and_the_command() -> None:
    out = _deploy("vllm", "--model", "moonshotai/Kimi-K2.6", "--gpus", "8xH200", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["tp"] == 8 and plan["context"] == 262144 and plan["kv_bytes_per_token"] == 70272
    assert plan["argv"][:2] == ["vllm", "serve"]
    assert all(VLLM.accepts(a) for a in plan["argv"] if a.startswith("--"))


def test_refusal_exits_2_with_the_arithmetic() -> None:
    out = _deploy("vllm", "--model", "moonshotai/Kimi-K2.6", "--gpus", "4xH100")
    assert out.returncode == 2 and out.stdout == ""
    assert "refused" in out.stderr and "72.0 GB" in out.stderr and "148.8 GB" in out.stderr


def test_bad_input_is_a_usage_error() -> None:
    out = _deploy("tgi", "--model", "moonshotai/Kimi-K2.6", "--gpus", "8xH200")
    assert out.returncode == 2 and "unknown engine 'tgi'" in out.stderr


def test_run_executes_the_printed_command(tmp_path) -> None:
    env = _fake_engine(tmp_path)
    out = _deploy("vllm", "--model", "moonshotai/Kimi-K2.6", "--gpus", "8xH200", "--port",
                  "8123", "--run", "--no-verify", env=env | {"FAKE_RC": "3"})
    assert out.returncode == 3, out.stderr  # the engine's own exit status
    printed = out.stdout.strip().splitlines()[-1].split()
    recorded = json.loads(Path(env["FAKE_ARGV"]).read_text())
    assert printed[1:] == recorded and recorded[0] == "serve"


def test_run_waits_for_models_then_verifies(tmp_path) -> None:
    env = _fake_engine(tmp_path) | {"FAKE_SERVE": "200"}
    port = "18437"
    out = _deploy("vllm", "--model", "moonshotai/Kimi-K2.6", "--gpus", "8xH200", "--port",
                  port, "--run", "--wait", "60", "--verify-n", "1", "--verify-out",
                  str(tmp_path / "verify"), env=env)
    # the fake engine answers /v1/models but not chat completions: the check must fail loudly
    assert "verification FAILED" in out.stderr, out.stderr
    assert f"openk2 swarm --base-url http://127.0.0.1:{port}/v1 --model kimi" in out.stderr
    assert (tmp_path / "verify").exists()


def test_run_reports_an_engine_that_dies_before_ready(tmp_path) -> None:
    env = _fake_engine(tmp_path) | {"FAKE_RC": "7"}
    out = _deploy("vllm", "--model", "moonshotai/Kimi-K2.6", "--gpus", "8xH200", "--run",
                  "--wait", "30", env=env)
    assert out.returncode == 7 and "exited with status 7" in out.stderr
