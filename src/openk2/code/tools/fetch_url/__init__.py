"""FetchURL: one web page as text, only from the hosts `[fetch] allow` lists.

Off unless the user's config names hosts (a project file cannot: it may be hostile). Every hop
of a redirect is checked against the list before it is requested, the body is read up to a
limit, HTML is reduced to text, and the action says its output is web data, which the gate
marks with the guard's `mark_untrusted` (`code.gate.as_data`) so
the model treats it as data, not instructions.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, Field

from openk2.agent.guard.netproxy import HostRule
from openk2.agent.tools.base import ToolError, ToolOk, ToolResult
from openk2.code.gate import Action
from openk2.code.tools.base import CodeTool, clip, description
from openk2.code.tools.fetch_url.html_text import html_to_text

MAX_BYTES = 2_000_000
MAX_REDIRECTS = 5
TIMEOUT_S = 20.0


class Params(BaseModel):
    url: str = Field(description="The http(s) URL to fetch.")


class FetchURL(CodeTool[Params]):
    """GET one allowlisted URL; its text, marked untrusted."""

    name = "FetchURL"
    description = description(__file__, "fetch_url")
    Params = Params

    def __init__(self, allow: Sequence[str], transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.rules = [HostRule.parse(entry) for entry in allow]
        self.transport = transport

    def action(self, params: Params) -> Action:
        return Action(self.name, "tool", f"fetch {params.url}"[:120],
                      arguments={"url": params.url}, read_only=True, output="web",
                      origin=params.url)

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be fetched, or None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{url!r} is not an http(s) URL"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname.lower()
        if not any(rule.allows(host, port) for rule in self.rules):
            return (f"{host}:{port} is not on the [fetch] allow list; ask the user to add it "
                    "to their config if it is needed")
        return None

    async def run(self, params: Params) -> ToolResult:
        url = params.url
        async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False,
                                     transport=self.transport, trust_env=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if (why := self.refusal(url)) is not None:
                    return ToolError(f"not fetched: {why}", brief="not allowed")
                try:
                    response, body = await _get(client, url)
                except httpx.HTTPError as exc:
                    return ToolError(f"fetching {url} failed: {exc}", brief="fetch failed")
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                return _result(url, response, body)
        return ToolError(f"more than {MAX_REDIRECTS} redirects from {params.url}")


async def _get(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, str]:
    """The response and at most MAX_BYTES of its body as text (the rest is never read)."""
    async with client.stream("GET", url) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= MAX_BYTES:
                break
    text = bytes(body[:MAX_BYTES]).decode(response.charset_encoding or "utf-8", "replace")
    return response, text


def _result(url: str, response: httpx.Response, body: str) -> ToolResult:
    kind = response.headers.get("content-type", "")
    text = html_to_text(body) if "html" in kind else body
    if response.status_code >= 400:
        return ToolError(f"HTTP {response.status_code} from {url}\n{clip(text)}",
                         brief=f"HTTP {response.status_code}")
    return ToolOk(clip(text), brief=f"{len(text)} characters")
