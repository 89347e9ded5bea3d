"""Fixtures: `start(app)` serves an aiohttp app on 127.0.0.1 for the test's duration. The
route tests also reuse the eval tests' fake endpoint (programmed accuracy per request)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def make(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield make
    for server in reversed(servers):
        await server.close()
