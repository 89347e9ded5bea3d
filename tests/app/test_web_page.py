"""The web page end to end in headless Chromium (Debian `chromium` driven by Playwright),
against the embedded model with the demo workspace's tools and agent mode.

Needs /usr/bin/chromium (`apt-get install -y chromium`); CI must install it, or this skips.
Screenshots of the empty state, a tool chat, an agent run and the phone layout are written to
artifacts/ (gitignored); `OPENK2_SCREENSHOTS=docs/screenshots` writes the README's copies.

Every step waits for the condition it checks (generous timeouts for a loaded machine), and
each reply is located by its position, never as "the last one".
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from app.live_app import AppServer, serving_app
from openk2.embedded.demo import demo_workspace, expected_answer

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = int(os.environ.get("OPENK2_UI_TIMEOUT_MS", 120_000))
"""Per wait: a loaded 2-core machine can stall Chromium for tens of seconds."""
KEY = "secret-key-123"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OPENK2_SCREENSHOTS", ROOT / "artifacts"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="needs Debian chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def live(embedded_model: tuple, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    runs = tmp_path_factory.mktemp("runs")
    with serving_app(*embedded_model, workspace=demo_workspace(), runs_dir=runs,
                     api_keys=[KEY]) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    timeout=TIMEOUT_MS, args=ARGS)
        yield browser
        browser.close()


def new_page(browser: object, *, width: int = 1200, height: int = 900, key: bool = True) -> object:
    """A fresh browser context (its own storage); with `key`, the key was entered before."""
    context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    if key:
        context.add_init_script(f"localStorage.setItem('openk2-api-key', '{KEY}')")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.urls = urls  # every URL the page asked for, to check that the key is never in one
    return page


def shot(page: object, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    assert path.stat().st_size > 10_000
    return path


def submit(page: object, text: str) -> object:
    """Type and send a message; return the locator of the reply it creates (by position)."""
    replies = page.locator("article.message.assistant")  # type: ignore[attr-defined]
    before = replies.count()
    page.fill("#input", text)  # type: ignore[attr-defined]  # waits until no reply runs
    page.press("#input", "Enter")  # type: ignore[attr-defined]
    reply = replies.nth(before)
    reply.wait_for()
    return reply


def finished(reply: object) -> object:
    """Wait until `reply` stopped streaming and the page is idle again."""
    reply.page.locator("#send").wait_for(state="visible")  # type: ignore[attr-defined]
    return reply


def test_the_key_is_asked_once_and_the_empty_state_says_what_is_served(
    live: AppServer, browser: object
) -> None:
    page = new_page(browser, key=False)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="API key").wait_for()  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "api-key"  # type: ignore[attr-defined]
    page.fill("#api-key", KEY)  # type: ignore[attr-defined]
    page.dispatch_event("#api-key", "change")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    empty = page.locator("#empty")  # type: ignore[attr-defined]
    assert "openk2-embedded" in empty.inner_text()
    assert "M parameters" in page.inner_text("#empty-model")  # type: ignore[attr-defined]
    assert "calling tools" in page.inner_text("#empty-purpose")  # type: ignore[attr-defined]
    assert page.locator(".example").count() >= 3  # type: ignore[attr-defined]
    page.locator("#settings summary").click()  # type: ignore[attr-defined]  # close it
    shot(page, "empty-state.png")
    page.reload()  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    assert not any(KEY in url for url in page.urls)  # type: ignore[attr-defined]


def test_a_plain_chat_streams_markdown_and_can_be_regenerated(
    live: AppServer, browser: object
) -> None:
    page = new_page(browser)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    page.check("input[name=mode][value=chat]")  # type: ignore[attr-defined]
    page.locator("#settings summary").click()  # type: ignore[attr-defined]
    page.fill("#max-tokens", "24")  # type: ignore[attr-defined]
    reply = finished(submit(page, "Hello! What can you do?"))
    reply.locator(".meta").filter(has_text="finish").wait_for()
    assert page.locator("article.message.user").first.inner_text().count("Hello") == 1  # type: ignore[attr-defined]
    reply.get_by_role("button", name="Regenerate the last answer").click()
    page.locator("#stop").wait_for(state="hidden")  # type: ignore[attr-defined]
    finished(page.locator("article.message.assistant").nth(0)).locator(  # type: ignore[attr-defined]
        ".meta").filter(has_text="finish").wait_for()
    assert page.locator("article.message.assistant").count() == 1  # type: ignore[attr-defined]


def test_a_tool_chat_shows_the_calculator_card_and_survives_a_reload(
    live: AppServer, browser: object
) -> None:
    page = new_page(browser)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    assert page.is_checked("input[name=mode][value=tools]")  # type: ignore[attr-defined]
    page.locator(".example").filter(has_text="12*7").click()  # type: ignore[attr-defined]
    reply = finished(page.locator("article.message.assistant").nth(0))  # type: ignore[attr-defined]
    card = reply.locator(".tool-call").first
    card.locator(".tool-result").filter(has_text="84").wait_for()
    assert "calculator" in card.locator(".tool-name").inner_text()
    assert "12*7" in card.locator(".tool-args").inner_text()
    assert reply.locator(".content").inner_text().strip() == "84"

    reply = finished(submit(page, "What is the owner in docs/atlas.txt?"))
    reply.locator(".tool-result").filter(has_text="owner: carol").wait_for()
    assert reply.locator(".content").inner_text().strip() == "carol"
    shot(page, "tool-chat.png")

    page.reload()  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    assert page.locator("article.message").count() == 4  # type: ignore[attr-defined]
    assert "84" in page.locator(".tool-call .tool-result").first.inner_text()  # type: ignore[attr-defined]
    assert page.locator("#conversations .conv").first.inner_text() == "What is 12*7?"  # type: ignore[attr-defined]

    page.locator("article.message.user").nth(0).get_by_role(  # type: ignore[attr-defined]
        "button", name="Edit and resend").click()
    page.fill(".edit-box", "What is 6*7?")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Send the edited message").click()  # type: ignore[attr-defined]
    reply = finished(page.locator("article.message.assistant").nth(0))  # type: ignore[attr-defined]
    reply.locator(".tool-result").filter(has_text="42").wait_for()
    assert page.locator("article.message").count() == 2  # type: ignore[attr-defined]


def test_agent_mode_shows_every_sub_agent_and_the_correct_answer(
    live: AppServer, browser: object
) -> None:
    page = new_page(browser)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    page.locator(".example").filter(has_text="sub-agents").click()  # type: ignore[attr-defined]
    reply = page.locator("article.message.assistant").nth(0)  # type: ignore[attr-defined]
    reply.locator(".final-answer").wait_for()
    agents = reply.locator(".subagent")
    assert agents.count() == 4
    for i in range(4):
        assert agents.nth(i).locator(".badge").text_content() == "completed"
    assert reply.locator(".final-answer").inner_text().strip() == expected_answer()
    meta = reply.locator(".meta").inner_text()
    assert "completed: 4 agents" in meta and "critical steps" in meta and "tokens" in meta
    assert reply.locator(".plan .tool-name").filter(has_text="assign_task").count() == 4
    shot(page, "agent-mode.png")


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


def test_stop_mid_stream_frees_the_engine(live: AppServer, browser: object,
                                          embedded_model: tuple) -> None:
    page = new_page(browser)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    page.check("input[name=mode][value=chat]")  # type: ignore[attr-defined]
    hold = EngineHold(embedded_model[0], steps=4)
    try:
        reply = submit(page, "Write a very long story.")
        page.wait_for_function("document.querySelector('article.message.assistant.streaming')")  # type: ignore[attr-defined]
        while hold.calls <= hold.steps:  # the stream is running and now held
            time.sleep(0.05)
        page.locator("#stop").click()  # type: ignore[attr-defined]
        reply.locator(".meta").filter(has_text="stopped").wait_for()
    finally:
        hold.release()
    engine = live.state.engine.engine
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while engine.has_unfinished_requests() or engine.block_manager.num_used_blocks:
        assert time.monotonic() < deadline, "the stopped request still holds the engine"
        time.sleep(0.05)


def test_phone_width_layout_has_no_horizontal_overflow(live: AppServer, browser: object) -> None:
    page = new_page(browser, width=390, height=844)
    page.goto(live.url + "/")  # type: ignore[attr-defined]
    page.locator("#status").filter(has_text="Ready").wait_for()  # type: ignore[attr-defined]
    page.locator(".example").filter(has_text="12*7").click()  # type: ignore[attr-defined]
    finished(page.locator("article.message.assistant").nth(0)).locator(  # type: ignore[attr-defined]
        ".tool-result").filter(has_text="84").wait_for()
    overflow = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.offsetParent !== null && e.closest('#sidebar') === null)
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.tagName + '.' + e.className)""")  # type: ignore[attr-defined]
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # type: ignore[attr-defined]
    assert page.locator("#sidebar").bounding_box()["x"] < 0  # type: ignore[attr-defined]  # hidden
    page.locator("#menu").click()  # type: ignore[attr-defined]
    page.locator("#conversations .conv").first.wait_for()  # type: ignore[attr-defined]
    page.locator("#close-sidebar").click()  # type: ignore[attr-defined]
    page.wait_for_function("document.getElementById('sidebar').getBoundingClientRect().right <= 0")  # type: ignore[attr-defined]
    shot(page, "phone.png")
