"""`mcpServers` entries: stdio (`command`) or streamable HTTP (`url`), bad ones refused."""

from __future__ import annotations

import socket

import pytest

from openk2.code.config import ConfigError
from openk2.code.mcp_tools import McpServerSpec, mcp_tools, parse_servers


def test_http_and_stdio_entries() -> None:
    specs = parse_servers({
        "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer x"}},
        "local": {"command": "srv", "args": ["-v"]},
    })
    assert specs == [
        McpServerSpec("web", url="http://127.0.0.1:9/mcp", headers={"Authorization": "Bearer x"}),
        McpServerSpec("local", "srv", ("-v",)),
    ]


@pytest.mark.parametrize(("entry", "message"), [
    ({"url": "ftp://host/mcp"}, "http:// or https://"),
    ({"url": "http://h/mcp", "command": "srv"}, "not both"),
    ({"url": "http://h/mcp", "headers": {"X": 1}}, "headers"),
    ({"args": []}, "`command` string or a `url`"),
])
def test_bad_entries_are_refused(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_servers({"bad": entry})


async def test_an_unreachable_http_server_names_the_cause(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"  # bound, never listening
        with pytest.raises(ConfigError, match="ConnectError"):
            async with mcp_tools(parse_servers({"web": {"url": url}}), tmp_path):
                pass
