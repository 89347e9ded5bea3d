"""Thin FastAPI routes: authentication, limits and metrics around the serving functions.

`/v1/*` needs an API key when the server has any (`Authorization: Bearer KEY`); `/health` and
`/metrics` do not. The web page lives in `openk2.app`, which the CLI mounts on this app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openk2.serve.errors import install_error_handlers
from openk2.serve.metrics import ServerMetrics
from openk2.serve.protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList
from openk2.serve.serving import create_chat_completion
from openk2.serve.serving_completions import create_completion
from openk2.serve.state import ServerState

KNOWN_ENDPOINTS = frozenset({"/v1/models", "/v1/chat/completions", "/v1/completions"})


def create_app(state: ServerState) -> FastAPI:
    """The ASGI app; its lifespan starts and stops the engine thread."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.engine.start()
        try:
            yield
        finally:
            state.engine.shutdown()

    app = FastAPI(title="openk2", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    install_error_handlers(app)
    app.add_middleware(RequestCounter, metrics=state.metrics)
    app.include_router(_public_routes(state))
    app.include_router(_v1_routes(state))
    return app


def _public_routes(state: ServerState) -> APIRouter:
    router = APIRouter()

    @router.get("/health")
    async def health() -> JSONResponse:
        if not state.engine.is_running:
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @router.get("/metrics")
    async def metrics() -> PlainTextResponse:
        stats = state.engine.stats()
        text = state.metrics.render(stats, state.model_name, state.limiter.in_flight)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return router


def _v1_routes(state: ServerState) -> APIRouter:
    async def require_key(authorization: str | None = Header(default=None)) -> None:
        state.check_api_key(authorization)

    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

    @router.get("/models")
    async def models() -> ModelList:
        limit = state.max_model_len
        base = state.model_name
        cards = [ModelCard(id=name, max_model_len=limit) for name in state.served_model_names]
        cards += [
            ModelCard(id=name, max_model_len=limit, parent=base)
            for name in state.adapter_names
        ]
        return ModelList(data=cards)

    @router.post("/chat/completions")
    async def chat(req: ChatCompletionRequest, raw: Request) -> Response:
        return await create_chat_completion(state, req, raw)

    @router.post("/completions")
    async def completions(req: CompletionRequest, raw: Request) -> Response:
        return await create_completion(state, req, raw)

    return router


class RequestCounter:
    """ASGI middleware counting /v1 responses by path and status (streams included)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        path = scope["path"] if scope["path"] in KNOWN_ENDPOINTS else "other"
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.record_request(path, status)  # bounded label set, whatever clients send
