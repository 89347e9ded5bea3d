"""The web chat page, end to end in headless Chromium (Debian `chromium` driven by Playwright).

Needs /usr/bin/chromium (`apt-get install -y chromium`); CI must install it, or this test skips.
A screenshot of the finished conversation is kept under artifacts/ (gitignored).

Timing: nothing here assumes the browser keeps pace with the server. Every step waits for the
condition it checks (with timeouts generous enough for a machine under heavy load), each reply
is located by its position in the conversation rather than as "the last one" (which, before the
new message exists, is the previous one), and the stop test holds the engine before the stream
can end, so the click always lands on a running stream however slow the browser is.
"""

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from serve.live import LiveServer, serving

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 180_000
"""Per wait: a loaded 2-core machine can stall Chromium for tens of seconds."""
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city"], "additionalProperties": False,
    "properties": {"city": {"type": "string", "maxLength": 24}}}}}]  # fmt: skip
"""Bounded, so that the random model's forced call ends well inside max_tokens."""

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium); "
    "the CI entry point must install it",
)


@pytest.fixture(scope="module")
def live(debug_model: tuple) -> Iterator[LiveServer]:
    with serving(*debug_model, api_keys=["secret"]) as server:
        yield server


@pytest.fixture
def page(live: LiveServer) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            timeout=TIMEOUT_MS,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def send(page: object, text: str) -> object:
    """Send a message and return the locator of its assistant reply once that finished."""
    reply = submit(page, text)
    reply.locator(".meta").filter(has_text="finish").wait_for()
    return reply


def submit(page: object, text: str) -> object:
    """Type and send a message; return the locator of the reply it creates (by position)."""
    replies = page.locator("article.message.assistant")  # type: ignore[attr-defined]
    before = replies.count()
    # fill waits until the input is enabled again, i.e. no reply is running
    page.fill("#input", text)  # type: ignore[attr-defined]
    page.press("#input", "Enter")  # type: ignore[attr-defined]
    reply = replies.nth(before)
    reply.wait_for()
    return reply


class EngineHold:
    """Blocks the engine thread in the model's forward after `steps` calls until released."""

    def __init__(self, model: torch.nn.Module, steps: int) -> None:
        self.calls, self.steps = 0, steps
        self.released = threading.Event()
        self._hook = model.register_forward_pre_hook(self._before_forward)

    def _before_forward(self, module: torch.nn.Module, args: object) -> None:
        self.calls += 1
        if self.calls > self.steps:
            self.released.wait(TIMEOUT_MS / 1000)

    def release(self) -> None:
        self.released.set()
        self._hook.remove()


def wait_until_idle(live: LiveServer, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    """Until the engine runs nothing and every page is free (the aborted stream cleaned up)."""
    engine = live.state.engine.engine
    deadline = time.monotonic() + timeout_s
    while engine.has_unfinished_requests() or engine.block_manager.num_used_blocks:
        assert time.monotonic() < deadline, "the stopped request still holds the engine"
        time.sleep(0.05)


def test_chat_page_streams_thinks_calls_tools_and_stops(
    live: LiveServer, page: object, debug_model: tuple
) -> None:
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    status = page.locator("#status")  # type: ignore[attr-defined]
    status.filter(has_text="401").wait_for()  # the key is missing: the page says so
    assert page.evaluate("document.activeElement.id") == "api-key"  # type: ignore[attr-defined]
    page.fill("#api-key", "secret")  # type: ignore[attr-defined]
    page.dispatch_event("#api-key", "change")  # type: ignore[attr-defined]
    status.filter(has_text="Ready").wait_for()
    assert page.locator("#model option").all_inner_texts() == ["debug"]  # type: ignore[attr-defined]

    page.fill("#max-tokens", "12")  # type: ignore[attr-defined]
    thinking = send(page, "Hello, who are you?")
    assert thinking.locator(".reasoning").is_visible()
    assert thinking.locator(".reasoning-text").inner_text().strip()

    page.uncheck("#thinking")  # type: ignore[attr-defined]
    instant = send(page, "Answer without thinking.")
    assert instant.locator(".reasoning").is_hidden()
    assert instant.locator(".content").inner_text().strip()

    assert page.locator("#settings").get_attribute("open") is not None  # type: ignore[attr-defined]
    page.fill("#tools", json.dumps(TOOLS))  # type: ignore[attr-defined]
    page.select_option("#tool-choice", "required")  # type: ignore[attr-defined]
    page.fill("#max-tokens", "120")  # type: ignore[attr-defined]
    called = send(page, "What is the weather in Paris?")
    card = called.locator(".tool-call").first
    assert "get_weather" in card.locator(".tool-name").inner_text()
    assert "city" in json.loads(card.locator("pre").inner_text())
    meta = called.locator(".meta").inner_text()
    assert "finish: tool_calls" in meta, meta

    page.fill("#tools", "")  # type: ignore[attr-defined]
    page.fill("#max-tokens", "600")  # type: ignore[attr-defined]
    hold = EngineHold(debug_model[0], steps=16)  # 16 forwards (~15 tokens), then it waits
    try:
        streaming = submit(page, "Write a very long story.")
        streaming.locator(".content").filter(has_text=re.compile(r"\S[\s\S]{20,}")).wait_for()
        assert "streaming" in (streaming.get_attribute("class") or "")
        page.locator("#stop").click()  # type: ignore[attr-defined]
        streaming.locator(".meta").filter(has_text="stopped").wait_for()
    finally:
        hold.release()
    wait_until_idle(live)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webui-chat.png"), full_page=True)  # type: ignore[attr-defined]
    assert (ARTIFACTS / "webui-chat.png").stat().st_size > 10_000
