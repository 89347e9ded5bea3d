"""API errors in OpenAI's shape (`{"error": {message, type, param, code}}`) with the right status.

Every failure a client can cause maps to a 4xx with a message that says how to fix the request;
overload maps to 429/503 with `Retry-After`. Anything else is our bug: logged with its traceback
and answered with a generic 500 that leaks no internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openk2.engine.async_engine import EngineDeadError, GenerationError
from openk2.serve.error_text import describe
from openk2.serve.protocol import ErrorInfo, ErrorResponse

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answered to the client as-is."""

    status = 400
    type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after_s = retry_after_s

    def info(self) -> ErrorInfo:
        return ErrorInfo(message=self.message, type=self.type, param=self.param, code=self.code)

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after_s)} if self.retry_after_s else None
        body = ErrorResponse(error=self.info()).model_dump()
        return JSONResponse(body, status_code=self.status, headers=headers)


class BadRequestError(APIError):
    status = 400


class AuthenticationError(APIError):
    status = 401
    type = "authentication_error"


class NotFoundError(APIError):
    status = 404
    type = "not_found_error"


class OverloadedError(APIError):
    """Too many requests in flight: back off and retry."""

    status = 429
    type = "rate_limit_error"


class UnavailableError(APIError):
    """The engine cannot take work right now (starting, stopping or failed)."""

    status = 503
    type = "service_unavailable_error"


class InternalError(APIError):
    status = 500
    type = "internal_error"


def from_engine(exc: BaseException) -> APIError:
    """The API error for a failure reported by the engine for one request."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, EngineDeadError):
        return UnavailableError(str(exc), code="engine_unavailable", retry_after_s=5)
    if isinstance(exc, GenerationError):  # this request's sequence failed; no other did
        return InternalError(f"Generation failed for this request: {exc}", code="generation_failed")
    if isinstance(exc, ValueError):  # rejected on admission (e.g. a race on context length)
        return BadRequestError(str(exc))
    log.error("generation failed", exc_info=exc)
    return InternalError("The engine failed while generating; please retry.")


def in_stream(exc: Exception) -> APIError:
    """The error event ending a stream whose 200 is already sent: API errors as they are, our
    bugs logged with their traceback and reported without internals."""
    if isinstance(exc, APIError):
        return exc
    log.error("stream failed", exc_info=exc)
    return InternalError("The server had an error while streaming this response.")


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the OpenAI error shape."""
    app.add_exception_handler(APIError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)


async def _api_error(_: Request, exc: APIError) -> JSONResponse:
    return exc.response()


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if errors and errors[0].get("type") == "json_invalid":
        reason = errors[0].get("msg", "cannot parse")
        return BadRequestError(f"Invalid JSON body: {reason}", code="invalid_json").response()
    param, message = describe(errors)
    return BadRequestError(message, param=param, code="invalid_value").response()


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    error = APIError(str(exc.detail))
    error.status = exc.status_code
    return error.response()


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return InternalError("The server had an error while processing your request.").response()
