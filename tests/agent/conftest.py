"""Shared fixtures for the agent tests: a scripted OpenAI-protocol HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer


@pytest.fixture
async def openai_server() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `server = await openai_server(handler)`; servers stop after the test."""
    started: list[FakeOpenAIServer] = []

    async def make(handler: Callable[..., Any]) -> FakeOpenAIServer:
        server = FakeOpenAIServer(handler)
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()
