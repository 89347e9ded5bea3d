"""Fixtures for the guard tests: a workspace and a fake HOME with credentials in it."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fake $HOME holding the secrets the guard must never expose."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE-KEY-CANARY\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key=AWS-CANARY\n")
    (home / ".env").write_text("TOKEN=HOME-DOTENV-CANARY\n")
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / ".git").mkdir(parents=True)
    (ws / "src").mkdir()
    (ws / "src" / "app.py").write_text("print('hi')\n")
    return ws


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep approvals, audit logs and snapshots of the tests out of the real state dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("OPENK2_STATE_DIR", str(state))
    return state
