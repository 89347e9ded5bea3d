"""Shared fixtures for the agent tests: a scripted OpenAI-protocol HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fake_openai_server import fake_servers


@pytest.fixture
async def openai_server() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `server = await openai_server(handler)`; servers stop after the test."""
    async with fake_servers() as make:
        yield make
