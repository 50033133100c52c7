"""Errors in OpenAI's shape, ``{"error": {"message": ..., "type": ...}}``, for every route."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from my_llm import InvalidNamespaceError, MyLLMError

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


class ErrorBody(BaseModel):
    """The inside of an error response."""

    message: str
    type: str


class ErrorResponse(BaseModel):
    """Every error the API returns: ``{"error": {"message", "type"}}``."""

    error: ErrorBody


def error_response(status: int, message: str, kind: str | None = None, headers: dict | None = None) -> JSONResponse:
    """A JSON error response in OpenAI's shape with ``status``."""
    body = {"error": {"message": message, "type": kind or _TYPES.get(status, "api_error")}}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Turn HTTP and validation errors into OpenAI-shaped bodies."""

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_response(error.status_code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(MyLLMError)
    async def _library_error(_request: Request, error: MyLLMError) -> JSONResponse:
        # A bad name from the request is the client's; anything else (a disk that cannot be written) is ours.
        if isinstance(error, InvalidNamespaceError):
            return error_response(400, str(error))
        return error_response(503, f"The server cannot do this now: {error}")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', '')}" for item in error.errors()
        )
        return error_response(422, f"Invalid request: {problems}")
