"""JSON error bodies for everything a client can get wrong, and for the database going away."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.schemas import ErrorBody

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered with its status, a code and a message."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def error_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(code=code, detail=detail, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _clean(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be huge, or personal)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into a JSON body."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _code(exc.status_code)
        return error_response(
            exc.status_code, _code(exc.status_code), detail, headers=dict(exc.headers or {})
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean(exc.errors())
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors) or "request"
        return error_response(422, "invalid_request", f"invalid {where}", errors=errors)

    @app.exception_handler(PoolTimeout)
    async def busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("no database connection free in time")
        return error_response(
            503, "unavailable", "the database is busy; retry shortly", headers={"Retry-After": "1"}
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(_: Request, exc: psycopg.OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return error_response(
            503, "unavailable", "the database is unavailable", headers={"Retry-After": "5"}
        )

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error")


# What every authenticated route may answer besides success, for /docs and /openapi.json.
def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries with the error body for these statuses."""
    texts = {
        400: "unknown query parameter",
        401: "no API key, or an unknown or revoked one",
        403: "the key lacks the scope this route needs",
        404: "no such resource (or it was deleted)",
        414: "path or query too long",
        422: "malformed input: ids, dates, limits, names",
        429: "rate limit of the key exceeded; see Retry-After",
        503: "database unavailable",
    }
    return {s: {"model": ErrorBody, "description": texts[s]} for s in statuses}
