"""Images and video through `openk2 serve` with the official `openai` client: answers, exact
logits through the engine, no prefix-cache crossover between images, and clear 400s."""

from __future__ import annotations

import http.server
import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import torch
from openai import OpenAI
from PIL import Image

from openk2.engine.config import EngineConfig
from openk2.model.vision.checkpoint import save_multimodal
from openk2.model.vision.processor import expand_media_pads, load_image, preprocess_image
from openk2.serve.launch import ServeConfig, build_state, load_model_and_tokenizer
from openk2.serve.media import MediaConfig
from openk2.serve.metrics import parse_metrics
from openk2.tokenizer.chat import encode_chat
from openk2.tokenizer.specials import MEDIA_PAD
from openk2.tokenizer.tokenizer import default_tokenizer_path
from serve.live import LiveServer, serving
from serve.media_files import data_url, mp4_bytes, png_bytes

NAME = "debug-vl"
ENGINE = EngineConfig(max_model_len=1024, max_num_seqs=8, max_num_batched_tokens=32,
                      num_blocks=200)  # fmt: skip
"""32-token prefill chunks: every 48-token image is cut by a chunk boundary."""
RED, BLUE = (210, 30, 30), (30, 60, 220)


@pytest.fixture(scope="module")
def vl_model() -> tuple[torch.nn.Module, object]:
    model, tokenizer, _ = load_model_and_tokenizer(ServeConfig(model="debug", vision="debug"))
    return model, tokenizer


@pytest.fixture(scope="module")
def vl_server(vl_model: tuple) -> Iterator[LiveServer]:
    media = MediaConfig(max_items=3, max_image_bytes=200_000, max_video_frames=8)
    with serving(*vl_model, name=NAME, engine=ENGINE, media=media) as live:
        yield live


@pytest.fixture
def vl_client(vl_server: LiveServer) -> OpenAI:
    return OpenAI(base_url=vl_server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def image_messages(png: bytes, text: str = "What is in the picture?") -> list[dict]:
    url = data_url("image/png", png)
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": parts}]


def ask(client: OpenAI, messages: list[dict], **extra: object):  # noqa: ANN201
    return client.chat.completions.create(
        model=NAME, messages=messages, max_tokens=4, temperature=0, logprobs=True,
        top_logprobs=3, extra_body={"ignore_eos": True}, **extra,
    )  # fmt: skip


def reference_logprobs(model: torch.nn.Module, tokenizer: object, png: bytes) -> list[float]:
    """Greedy logprobs of 4 steps from the model's own forward (full recompute, no engine)."""
    item = preprocess_image(load_image(png))
    pad = tokenizer.token_id(MEDIA_PAD)  # type: ignore[attr-defined]
    ids = encode_chat(tokenizer, image_messages(png), thinking=True, preserve_thinking=False)
    ids = expand_media_pads(ids, [item.num_tokens], pad)
    out = []
    with torch.inference_mode():
        for _ in range(4):
            logits = model(torch.tensor([ids]), item.pixels, [item.grid_thw])[0, -1]
            logprobs = torch.log_softmax(logits.float(), -1)
            out.append(float(logprobs.max()))
            ids.append(int(logits.argmax()))
    return out


def test_an_image_and_a_video_get_answers_and_exact_token_counts(
    vl_client: OpenAI, vl_model: tuple
) -> None:
    _, tokenizer = vl_model
    png = png_bytes(RED)
    image = ask(vl_client, image_messages(png))
    assert image.choices[0].finish_reason == "length" and image.usage.completion_tokens == 4
    single = encode_chat(tokenizer, image_messages(png), thinking=True, preserve_thinking=False)
    assert image.usage.prompt_tokens == len(single) - 1 + 48  # 224x168: 16x12 patches, 48 tokens
    video = [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": data_url("video/mp4", mp4_bytes())}},
        {"type": "text", "text": "What happens?"}]}]  # fmt: skip
    answer = ask(vl_client, video)
    assert answer.usage.completion_tokens == 4
    assert answer.choices[0].message.content is not None or answer.choices[0].message


def test_served_logprobs_of_an_image_prompt_equal_the_direct_model(
    vl_client: OpenAI, vl_model: tuple
) -> None:
    png = png_bytes(RED)
    served = ask(vl_client, image_messages(png)).choices[0].logprobs.content
    expected = reference_logprobs(*vl_model, png)
    assert len(served) == 4
    for entry, value in zip(served, expected, strict=True):
        assert abs(entry.logprob - value) <= 1e-4


def test_same_text_with_two_images_differs_and_shares_no_image_pages(
    vl_client: OpenAI, vl_model: tuple, vl_server: LiveServer
) -> None:
    _, tokenizer = vl_model
    red = ask(vl_client, image_messages(png_bytes(RED), "Describe it, please."))
    blue = ask(vl_client, image_messages(png_bytes(BLUE), "Describe it, please."))
    red_lp = [e.logprob for e in red.choices[0].logprobs.content]
    blue_lp = [e.logprob for e in blue.choices[0].logprobs.content]
    assert red_lp != blue_lp
    ids = encode_chat(tokenizer, image_messages(png_bytes(RED), "Describe it, please."),
                      thinking=True, preserve_thinking=False)  # fmt: skip
    first_pad = ids.index(tokenizer.token_id(MEDIA_PAD))  # type: ignore[attr-defined]
    assert blue.usage.prompt_tokens_details.cached_tokens <= first_pad
    again = ask(vl_client, image_messages(png_bytes(RED), "Describe it, please."))
    assert again.usage.prompt_tokens_details.cached_tokens >= first_pad + 48 - 16
    assert [e.logprob for e in again.choices[0].logprobs.content] == pytest.approx(red_lp, abs=1e-5)
    counts = parse_metrics(httpx.get(vl_server.url + "/metrics").text)
    assert counts["openk2_media_items_encoded_total"] < counts["openk2_media_items_total"]


def test_a_streamed_image_request_streams(vl_client: OpenAI) -> None:
    stream = vl_client.chat.completions.create(
        model=NAME, messages=image_messages(png_bytes(BLUE)), max_tokens=3, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
    )  # fmt: skip
    chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


def _part(kind: str, url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": kind, kind: {"url": url}}]}]


@pytest.mark.parametrize(
    ("messages", "code", "says"),
    [
        (_part("image_url", "data:image/png;base64,@@@notbase64"), "invalid_media", "base64"),
        (_part("image_url", data_url("image/tiff", b"II*\0")), "unsupported_media_type",
         "image/tiff"),
        (_part("image_url", data_url("image/png", b"\x89PNG but broken")), "invalid_media",
         "cannot use this image"),
        (_part("image_url", data_url("image/png", b"0" * 300_000)), "media_too_large", "MiB"),
        (_part("image_url", "https://example.com/cat.png"), "media_url_disabled",
         "--allow-media-urls"),
        (_part("image_url", "file:///etc/passwd"), "media_url_disabled", "--media-root"),
        (_part("video_url", data_url("video/mp4", mp4_bytes(num_frames=40))), "invalid_media",
         "more than the 8 allowed"),
        (_part("video_url", data_url("image/png", png_bytes(RED))), "unsupported_media_type",
         "video/mp4"),
        (_part("video_url", data_url("video/mp4", b"\0\0\0 ftypisom broken")), "invalid_media",
         "cannot use this video"),
        (image_messages(png_bytes(RED)) * 2 + _part("image_url", data_url("image/png", b"x"))
         * 2, "too_many_media", "at most 3"),
        ([{"role": "user", "content": [{"type": "input_audio",
           "input_audio": {"data": "UklGRg==", "format": "wav"}}]}], "unsupported_modality",
         "no audio encoder"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], None, None),
        ([{"role": "user", "content": "a literal <|media_pad|> in text"}], "invalid_media",
         "must not contain"),
    ],
)  # fmt: skip
def test_bad_media_are_400s_that_say_why(
    vl_server: LiveServer, messages: list[dict], code: str | None, says: str | None
) -> None:
    body = {"model": NAME, "messages": messages, "max_tokens": 2}
    response = httpx.post(vl_server.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"].startswith("messages")
    if code is not None:
        assert error["code"] == code and says in error["message"], error


def test_a_text_only_model_says_it_reads_text_only(server: LiveServer) -> None:
    body = {"model": "debug", "messages": image_messages(png_bytes(RED))}
    response = httpx.post(server.url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "reads text only" in response.json()["error"]["message"]


@pytest.fixture
def media_site(tmp_path: Path) -> Iterator[str]:
    """A local http server for the media files in tmp_path."""
    (tmp_path / "red.png").write_bytes(png_bytes(RED))
    (tmp_path / "big.png").write_bytes(png_bytes(BLUE, (1600, 1600)) + b"\0" * 300_000)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[misc]

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/to-file":  # a redirect out of http(s) must not be followed
                self.send_response(302)
                self.send_header("Location", "ftp://127.0.0.1/etc/hostname")
                self.end_headers()
                return
            super().do_GET()

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()
    site.server_close()


def test_http_and_file_urls_work_where_the_server_allows_them(
    vl_model: tuple, media_site: str, tmp_path: Path
) -> None:
    media = MediaConfig(allow_http=True, max_image_bytes=200_000, file_root=tmp_path)
    with serving(*vl_model, name=NAME, engine=ENGINE, media=media) as live:
        client = OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0, timeout=120)
        for url in (f"{media_site}/red.png", (tmp_path / "red.png").as_uri()):
            answer = ask(client, _part("image_url", url))
            assert answer.usage.completion_tokens == 4
        refused = [(f"{media_site}/big.png", "more than"), (f"{media_site}/missing.png", "404"),
                   (f"{media_site}/to-file", "non-http"),
                   ("file:///etc/hostname", "no such file under the media root")]
        for url, says in refused:
            with pytest.raises(openai.BadRequestError, match=says):
                ask(client, _part("image_url", url))


def test_serve_loads_a_multimodal_checkpoint(vl_model: tuple, tmp_path: Path) -> None:
    """The K2.5 / K2.6 layout (language_model.*, vision_tower.*, mm_projector.*) saved, then
    loaded by `openk2 serve`'s launcher: it answers an image with the same logprobs."""
    model, tokenizer = vl_model
    save_multimodal(model, tmp_path, max_shard_size="300KB")
    for name in ("tiktoken.model", "tokenizer_config.json"):
        shutil.copy(default_tokenizer_path() / name, tmp_path / name)
    state = build_state(ServeConfig(model=str(tmp_path), engine=ENGINE))
    assert state.multimodal and state.media_pad_id == tokenizer.token_id(MEDIA_PAD)
    server = LiveServer(state).start()
    try:
        client = OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        answer = client.chat.completions.create(
            model=tmp_path.name, messages=image_messages(png_bytes(RED)), max_tokens=4,
            temperature=0, logprobs=True, extra_body={"ignore_eos": True},
        )  # fmt: skip
    finally:
        server.stop()
    served = [e.logprob for e in answer.choices[0].logprobs.content]
    assert served == pytest.approx(reference_logprobs(model, tokenizer, png_bytes(RED)), abs=1e-4)


def test_a_checkpoint_whose_pad_is_not_the_tokenizers_is_refused(
    vl_model: tuple, tmp_path: Path
) -> None:
    model, _ = vl_model
    model.media_pad_token_id, pad = 7, model.media_pad_token_id
    try:
        save_multimodal(model, tmp_path)
    finally:
        model.media_pad_token_id = pad
    shutil.copy(default_tokenizer_path() / "tiktoken.model", tmp_path / "tiktoken.model")
    with pytest.raises(ValueError, match="media_placeholder_token_id is 7"):
        load_model_and_tokenizer(ServeConfig(model=str(tmp_path)))


def test_a_raw_completion_with_a_stray_media_pad_is_a_400(vl_server: LiveServer) -> None:
    body = {"model": NAME, "prompt": "look: <|media_pad|>", "max_tokens": 2}
    response = httpx.post(vl_server.url + "/v1/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert "media placeholder tokens" in response.json()["error"]["message"]


def test_an_image_the_tower_fails_on_fails_only_its_own_request() -> None:
    """A tower that raises on all-white pixels: that request gets its 500 (generation_failed),
    the image request sent at the same time gets the same answer as when served alone."""
    model, tokenizer = load_model_and_tokenizer(ServeConfig(model="debug", vision="debug"))[:2]
    tower = model.vision_tower.forward

    def fragile(pixels: torch.Tensor, grid_thw: object) -> torch.Tensor:
        if bool((pixels > 0.99).all()):
            raise RuntimeError("the tower cannot take this image")
        return tower(pixels, grid_thw)

    model.vision_tower.forward = fragile
    with serving(model, tokenizer, name=NAME, engine=ENGINE) as live:
        client = OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0, timeout=120)
        alone = ask(client, image_messages(png_bytes(RED), "Alone?"))
        results: dict[str, object] = {}

        def send(key: str, png: bytes) -> None:
            try:
                results[key] = ask(client, image_messages(png, "Alone?"))
            except openai.APIStatusError as exc:
                results[key] = exc

        white = _flat_png((255, 255, 255))
        threads = [threading.Thread(target=send, args=(k, p))
                   for k, p in (("bad", white), ("good", png_bytes(RED)))]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    bad, good = results["bad"], results["good"]
    assert isinstance(bad, openai.InternalServerError) and "cannot take" in str(bad.body)
    assert [e.logprob for e in good.choices[0].logprobs.content] == pytest.approx(  # type: ignore[union-attr]
        [e.logprob for e in alone.choices[0].logprobs.content], abs=1e-5)


def _flat_png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (112, 84), color).save(buffer, format="PNG")
    return buffer.getvalue()
