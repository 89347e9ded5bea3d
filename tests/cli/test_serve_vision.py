"""`openk2 serve --model CHECKPOINT` on a saved K2.5 / K2.6 multimodal checkpoint: the official
`openai` client sends an image and a video and gets answers; bad vision options fail cleanly."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openai import OpenAI

from openk2.model.vision.checkpoint import save_multimodal
from openk2.serve.launch import ServeConfig, load_model_and_tokenizer
from openk2.tokenizer.tokenizer import default_tokenizer_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared media files
from serve.media_files import data_url, mp4_bytes, png_bytes  # noqa: E402

CLI = [sys.executable, "-c", "from openk2.cli import main; main()", "serve"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checkpoint(path: Path) -> Path:
    model, _, _ = load_model_and_tokenizer(ServeConfig(model="debug", vision="debug"))
    save_multimodal(model, path)
    for name in ("tiktoken.model", "tokenizer_config.json"):
        shutil.copy(default_tokenizer_path() / name, path / name)
    return path


def _wait(url: str, proc: subprocess.Popen) -> None:
    for _ in range(900):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_serve_answers_an_image_and_a_video_from_a_multimodal_checkpoint(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "k26-tiny-vl")
    port = free_port()
    proc = subprocess.Popen([*CLI, "--model", str(ckpt), "--port", str(port),
                             "--max-model-len", "512"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, proc)
        client = OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
        image = data_url("image/png", png_bytes((9, 9, 200)))
        content = [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "video_url", "video_url": {"url": data_url("video/mp4", mp4_bytes())}},
            {"type": "text", "text": "Compare them."},
        ]
        answer = client.chat.completions.create(
            model="k26-tiny-vl", messages=[{"role": "user", "content": content}], max_tokens=3,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        assert answer.usage.completion_tokens == 3
        assert answer.usage.prompt_tokens > 48 + 6  # the image's 48 tokens + the clip's 6
        info = httpx.get(url + "/app/info").json()
        assert info["images"] is True
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_vision_options_fail_cleanly(tmp_path: Path) -> None:
    out = subprocess.run([*CLI, "--model", "debug", "--vision", "nope"], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 1 and "unknown vision preset 'nope'" in out.stderr
    out = subprocess.run([*CLI, "--model", str(tmp_path), "--vision", "debug"],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 1 and "--vision adds a random tower" in out.stderr
    assert "Traceback" not in out.stderr
