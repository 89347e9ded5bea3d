"""Image and video attachments on the web page, in headless Chromium: with a multimodal model
they are previewed and sent as data-URL parts (the server counts their tokens); with a
text-only model the attach button is disabled and says why."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
import torch

from app.live_app import AppServer, serving_app
from app.test_web_page import CHROMIUM, browser, finished, new_page, shot, submit  # noqa: F401
from openk2.serve.launch import ServeConfig, load_model_and_tokenizer
from serve.media_files import mp4_bytes, png_bytes

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
KEY = "secret-key-123"


def _serve(vision: str | None) -> Iterator[AppServer]:
    model, tokenizer, name = load_model_and_tokenizer(ServeConfig(model="debug", vision=vision))
    torch.set_num_threads(1)
    with serving_app(model, tokenizer, name, api_keys=[KEY]) as server:
        yield server


@pytest.fixture(scope="module")
def vl_live() -> Iterator[AppServer]:
    yield from _serve("debug")


@pytest.fixture(scope="module")
def text_live() -> Iterator[AppServer]:
    yield from _serve(None)


def _chat_bodies(page: object) -> list[dict]:
    bodies: list[dict] = []

    def keep(request: object) -> None:
        if request.url.endswith("/v1/chat/completions"):  # type: ignore[attr-defined]
            bodies.append(json.loads(request.post_data))  # type: ignore[attr-defined]

    page.on("request", keep)  # type: ignore[attr-defined]
    return bodies


def _open(page: object, live: AppServer) -> None:
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    page.check("input[name=mode][value=chat]")  # type: ignore[attr-defined]
    page.locator("#settings summary").click()  # type: ignore[attr-defined]
    page.fill("#max-tokens", "3")  # type: ignore[attr-defined]
    page.locator("#settings summary").click()  # type: ignore[attr-defined]


def test_an_attached_image_and_video_are_previewed_and_sent_as_data_urls(
    vl_live: AppServer, browser: object  # noqa: F811
) -> None:
    page = new_page(browser)
    bodies = _chat_bodies(page)
    _open(page, vl_live)
    assert page.is_enabled("#attach")  # type: ignore[attr-defined]
    page.set_input_files("#attach-file", files=[  # type: ignore[attr-defined]
        {"name": "red.png", "mimeType": "image/png", "buffer": png_bytes((210, 30, 30))},
        {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes()},
    ])
    page.locator("#attachments .attachment").nth(1).wait_for()  # type: ignore[attr-defined]
    assert page.locator("#attachments img").count() == 1  # type: ignore[attr-defined]
    shot(page, "attachments.png")
    reply = finished(submit(page, "What do you see?"))
    reply.locator(".meta").filter(has_text="finish").wait_for()
    content = bodies[-1]["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["image_url", "video_url", "text"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1]["video_url"]["url"].startswith("data:video/mp4;base64,")
    prompt_tokens = int(reply.locator(".meta").inner_text().split(" prompt")[0].split("· ")[-1])
    assert prompt_tokens > 48 + 6  # the image's 48 tokens and the clip's chunk are counted
    assert page.locator("#attachments").is_hidden()  # type: ignore[attr-defined]
    assert page.locator("article.message.user img").count() == 1  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]  # the conversation and its picture are kept
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    assert page.locator("article.message.user img").count() == 1  # type: ignore[attr-defined]
    assert page.locator("article.message.user figcaption").inner_text() == "▶ clip.mp4"  # type: ignore[attr-defined]


def test_dropping_a_non_media_file_is_refused_with_a_reason(
    vl_live: AppServer, browser: object  # noqa: F811
) -> None:
    page = new_page(browser)
    _open(page, vl_live)
    page.set_input_files("#attach-file", files=[  # type: ignore[attr-defined]
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    page.locator("#status").filter(has_text="Not an image or a video").wait_for()  # type: ignore[attr-defined]
    assert page.locator("#attachments .attachment").count() == 0  # type: ignore[attr-defined]


def test_a_text_only_model_disables_attach_and_says_why(
    text_live: AppServer, browser: object  # noqa: F811
) -> None:
    page = new_page(browser)
    _open(page, text_live)
    attach = page.locator("#attach")  # type: ignore[attr-defined]
    assert attach.is_disabled()
    assert "reads text only" in (attach.get_attribute("title") or "")


def test_an_edited_message_keeps_its_image(vl_live: AppServer, browser: object) -> None:  # noqa: F811
    page = new_page(browser)
    bodies = _chat_bodies(page)
    _open(page, vl_live)
    page.set_input_files("#attach-file", files=[  # type: ignore[attr-defined]
        {"name": "blue.png", "mimeType": "image/png", "buffer": png_bytes((30, 60, 220))}])
    page.locator("#attachments .attachment").wait_for()  # type: ignore[attr-defined]
    finished(submit(page, "First try")).locator(".meta").filter(has_text="finish").wait_for()
    page.locator("article.message.user").nth(0).get_by_role(  # type: ignore[attr-defined]
        "button", name="Edit and resend").click()
    page.fill(".edit-box", "Second try")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Send the edited message").click()  # type: ignore[attr-defined]
    reply = finished(page.locator("article.message.assistant").nth(0))  # type: ignore[attr-defined]
    reply.locator(".meta").filter(has_text="finish").wait_for()
    content = bodies[-1]["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["image_url", "text"]
    assert content[1]["text"] == "Second try"


def test_attachments_too_large_for_storage_are_dropped_from_it_not_from_the_chat(
    vl_live: AppServer, browser: object  # noqa: F811
) -> None:
    """A tiny storage quota (1,500 characters): the chat is still saved, without the files'
    data, and after a reload the user message names the files it no longer holds."""
    page = new_page(browser)
    page.add_init_script("""(() => {
      const setItem = Storage.prototype.setItem;
      Storage.prototype.setItem = function (key, value) {
        if (String(value).length > 1500) throw new DOMException("full", "QuotaExceededError");
        return setItem.call(this, key, value);
      };
    })();""")  # type: ignore[attr-defined]
    _open(page, vl_live)
    page.set_input_files("#attach-file", files=[  # type: ignore[attr-defined]
        {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes()}])
    page.locator("#attachments .attachment").wait_for()  # type: ignore[attr-defined]
    finished(submit(page, "Keep it?")).locator(".meta").filter(has_text="finish").wait_for()
    assert "storage is full" not in page.inner_text("#status")  # type: ignore[attr-defined]
    page.reload()  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    user = page.locator("article.message.user").first  # type: ignore[attr-defined]
    assert "video clip.mp4 (not kept" in user.inner_text() and "Keep it?" in user.inner_text()
