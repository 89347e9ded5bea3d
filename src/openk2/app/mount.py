"""Mount the consumer app on `serve`'s ASGI app (the CLI's composition step)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from openk2.agent.tools.base import Toolset
from openk2.app.agent_mode import SwarmRuns
from openk2.app.config import AppConfig
from openk2.app.routes import WEB_DIR, app_routes, page_routes
from openk2.embedded.profiles import CLIENT_SYSTEM_PROMPT
from openk2.serve.state import ServerState


def workspace_toolset(config: AppConfig) -> tuple[Toolset | None, list[str]]:
    """The server-side tools over the configured workspace, and the files they can read."""
    if config.workspace is None:
        return None, []
    if config.make_tools is None:
        raise ValueError("AppConfig.workspace is set but no make_tools binds tools to it")
    return config.make_tools(config.workspace)


def mount_app(app: FastAPI, config: AppConfig | None = None) -> SwarmRuns:
    """Add the page (`/`, `/static`) and the `/app` routes to `serve`'s app."""
    config = config or AppConfig()
    state: ServerState = app.state.server
    tools, files = workspace_toolset(config)
    runs = SwarmRuns(config, tools)
    app.include_router(page_routes())
    app.include_router(app_routes(state, config, tools, files, runs, CLIENT_SYSTEM_PROMPT))
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    _close_runs_on_shutdown(app, runs)
    return runs


def _close_runs_on_shutdown(app: FastAPI, runs: SwarmRuns) -> None:
    """Wrap the app's lifespan: running swarm runs stop (resumably) before the engine does."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi: Any) -> AsyncIterator[Any]:
        async with inner(asgi) as value:
            try:
                yield value
            finally:
                await runs.close()

    app.router.lifespan_context = lifespan
