"""The app's HTTP routes: the page, `/app/info`, tool chats and agent-mode runs.

Everything under `/app` needs the server's API key (when it has one), as `/v1` does: these
routes run the model and, with `--tools`, tools. The page sends the key it keeps in the
browser as a header, never in a URL. The model is reached through this server's own `/v1`,
with the caller's key, so limits, metrics and validation apply as to any client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from openk2.agent.llm.openai_compat import OpenAICompatProvider
from openk2.agent.tools.base import Toolset
from openk2.app.agent_mode import SwarmRuns
from openk2.app.config import AppConfig
from openk2.app.info import app_info
from openk2.app.streams import stream_work
from openk2.app.tool_chat import ToolChatRequest, chat_history, run_turn
from openk2.serve.sse import sse
from openk2.serve.state import ServerState

WEB_DIR = Path(__file__).parent / "web"


class SwarmRequest(BaseModel):
    """Body of `POST /app/swarm/runs`."""

    task: str = Field(min_length=1, description="What the orchestrator should do.")


def page_routes() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return router


def app_routes(state: ServerState, config: AppConfig, tools: Toolset | None,
               files: list[str], runs: SwarmRuns, system_prompt: str) -> APIRouter:
    async def require_key(authorization: str | None = Header(default=None)) -> None:
        state.check_api_key(authorization)

    router = APIRouter(prefix="/app", dependencies=[Depends(require_key)])

    @router.get("/info")
    async def info() -> dict[str, Any]:
        return app_info(state, tools.names if tools else [], files)

    @router.post("/chat")
    async def chat(req: ToolChatRequest, raw: Request) -> Response:
        if tools is None:
            return _error(400, "This server runs no tools; start it with "
                          "`openk2 serve --tools workspace=DIR`.")
        try:
            history = chat_history(req, system_prompt)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"Bad conversation: {exc}")
        provider = _self_provider(state, raw)
        return stream_work(lambda wire: run_turn(provider, tools, history, req, wire,
                                                 config.chat_max_steps))

    _swarm_routes(router, state, runs)
    return router


def _swarm_routes(router: APIRouter, state: ServerState, runs: SwarmRuns) -> None:
    @router.post("/swarm/runs")
    async def start(req: SwarmRequest, raw: Request) -> Response:
        try:
            run = runs.start(req.task, _v1_url(raw), state.model_name, _bearer(raw))
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse({"run_id": run.run_id})

    @router.get("/swarm/runs/{run_id}/events")
    async def events(run_id: str, after: int = 0) -> Response:
        if run_id not in runs.runs:
            return _error(404, f"Run {run_id!r} is not running on this server; resume it.")
        return _sse_of(runs, run_id, after)

    @router.post("/swarm/runs/{run_id}/cancel")
    async def cancel(run_id: str) -> JSONResponse:
        return JSONResponse({"cancelled": runs.cancel(run_id)})

    @router.post("/swarm/runs/{run_id}/resume")
    async def resume(run_id: str, raw: Request) -> Response:
        try:
            run = runs.resume(run_id, _v1_url(raw), _bearer(raw))
        except (FileNotFoundError, ValueError) as exc:
            return _error(404, str(exc))
        return JSONResponse({"run_id": run.run_id})


def _sse_of(runs: SwarmRuns, run_id: str, after: int) -> Response:
    async def body() -> Any:
        async for event in runs.follow(run_id, after):
            yield sse(event)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _self_provider(state: ServerState, raw: Request) -> OpenAICompatProvider:
    return OpenAICompatProvider(_v1_url(raw), state.model_name, _bearer(raw))


def _v1_url(raw: Request) -> str:
    """This server's own `/v1`, as the client reached it (so any host or port works)."""
    return str(raw.base_url).rstrip("/") + "/v1"


def _bearer(raw: Request) -> str | None:
    scheme, _, token = (raw.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}},
                        status_code=status)
