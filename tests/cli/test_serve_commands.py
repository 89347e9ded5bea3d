"""`openk2 serve`: a preset starts a working server; bad arguments fail with a clear message."""

import socket
import subprocess
import sys
import time

import httpx

CLI = [sys.executable, "-c", "from openk2.cli import main; main()", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_preset_answers_over_http() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "--model", "debug", "--port", str(port), "--api-key", "k",
         "--served-model-name", "tiny-k2", "--max-model-len", "256"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.1)
        models = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer k"}).json()
        assert models["data"][0]["id"] == "tiny-k2" and models["data"][0]["max_model_len"] == 256
        assert httpx.get(url + "/v1/models").status_code == 401
        assert "openk2_cache_pages_total" in httpx.get(url + "/metrics").text
        assert "openk2" in httpx.get(url + "/").text  # the web app is mounted
        assert httpx.get(url + "/app/info").status_code == 401
        info = httpx.get(url + "/app/info", headers={"Authorization": "Bearer k"}).json()
        assert info["model"] == "tiny-k2" and info["tools"] == []  # tools are opt-in
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_tools_option_fails_cleanly() -> None:
    out = subprocess.run([*CLI, "--model", "debug", "--tools", "workspace=/no/such/dir"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "--tools workspace /no/such/dir does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_model_fails_cleanly() -> None:
    out = subprocess.run([*CLI, "--model", "no-such-preset-or-dir"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "is neither" in out.stderr and "a preset" in out.stderr
    assert "Traceback" not in out.stderr


def test_old_dtype_spelling_is_a_one_line_note() -> None:
    out = subprocess.run([*CLI, "--model", "no-such-preset-or-dir", "--dtype", "bf16"],
                         capture_output=True, text=True)
    assert "FutureWarning: --dtype 'bf16' is deprecated; write 'bfloat16'\n" in out.stderr
    assert "return " not in out.stderr and "is neither" in out.stderr  # no source listing
