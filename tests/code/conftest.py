"""Fixtures for the coding-CLI tests: the agent tests' scripted OpenAI server, isolated homes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from fake_openai_server import fake_servers  # noqa: E402


@pytest.fixture
async def fake_llm() -> AsyncIterator[Callable[..., Any]]:
    """Factory: `server = await fake_llm(handler)`; servers stop after the test."""
    async with fake_servers() as make:
        yield make


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Sessions, approvals, audit logs and config of every test live under `tmp_path`."""
    for var, sub in (("OPENK2_CODE_HOME", "code-state"), ("OPENK2_STATE_DIR", "state"),
                     ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "xdg-state")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "KIMI_BASE_URL", "KIMI_API_KEY",
                "KIMI_MODEL_NAME"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path
