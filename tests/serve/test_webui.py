"""The web chat page, end to end in headless Chromium (Debian `chromium` driven by Playwright).

Needs /usr/bin/chromium (`apt-get install -y chromium`); CI must install it, or this test skips.
A screenshot of the finished conversation is kept under artifacts/ (gitignored).
"""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve.live import LiveServer, serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip

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
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def send(page: object, text: str) -> object:
    """Send a message and return the locator of the newest assistant message once it finished."""
    page.fill("#input", text)  # type: ignore[attr-defined]
    page.press("#input", "Enter")  # type: ignore[attr-defined]
    reply = page.locator("article.message.assistant").last  # type: ignore[attr-defined]
    reply.locator(".meta").filter(has_text="finish").wait_for()
    return reply


def test_chat_page_streams_thinks_calls_tools_and_stops(live: LiveServer, page: object) -> None:
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
    assert "tool_calls" in called.locator(".meta").inner_text()

    page.fill("#tools", "")  # type: ignore[attr-defined]
    page.fill("#max-tokens", "600")  # type: ignore[attr-defined]
    page.fill("#input", "Write a very long story.")  # type: ignore[attr-defined]
    page.press("#input", "Enter")  # type: ignore[attr-defined]
    streaming = page.locator("article.message.assistant").last  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "[...document.querySelectorAll('article.assistant')].at(-1)"
        ".querySelector('.content').textContent.length > 20"
    )
    page.locator("#stop").click()  # type: ignore[attr-defined]
    streaming.locator(".meta").filter(has_text="stopped").wait_for()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webui-chat.png"), full_page=True)  # type: ignore[attr-defined]
    assert (ARTIFACTS / "webui-chat.png").stat().st_size > 10_000
