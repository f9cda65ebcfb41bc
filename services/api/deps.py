"""Request dependencies: a pooled read-only connection, the calling key, its scope and rate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from services.api import repository
from services.api.auth import ApiKey, KeyCache, bearer_token, token_hash
from services.api.errors import ApiError
from services.api.ratelimit import RateLimiter, retry_after_header
from services.api.routes.common import BIGINT_MAX
from services.common import pool
from services.common.pool import AsyncConnection, AsyncConnectionPool, Connection, ConnectionPool

_BEARER_TEXT = "an API key from `deloton api-key create`"


def get_pool(request: Request) -> ConnectionPool[Connection]:
    """The application's connection pool."""
    readers: ConnectionPool[Connection] = request.app.state.pool
    return readers


def get_async_pool(request: Request) -> AsyncConnectionPool[AsyncConnection]:
    """The application's asyncio pool of read-only connections (the hot read routes)."""
    readers: AsyncConnectionPool[AsyncConnection] = request.app.state.async_pool
    return readers


async def _stored_key(request: Request, digest: bytes) -> ApiKey | None:
    async with pool.reading(get_async_pool(request)) as conn:
        return await repository.find_key_async(conn, token_hash=digest)


class Authorized(HTTPBearer):
    """The calling key, checked for existence (401), rate (429) and `scope` (403).

    One dependency per request, and the Bearer security scheme of /openapi.json (it is an
    HTTPBearer). Async, and so is a lookup (on the asyncio pool): no thread hop. The lookup
    always returns its connection before the route takes its own (see `reading`).
    """

    def __init__(self, scope: str) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_TEXT)
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        # The header is parsed here, not by HTTPBearer, so that a malformed one (no scheme,
        # 5,000 characters) is a 401 like a missing one.
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise ApiError(
                401, "unauthorized", "send an API key as `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        state = request.app.state
        cache: KeyCache = state.keys
        digest = token_hash(token)
        cached, key = cache.get(digest)
        if not cached:
            key = await _stored_key(request, digest)
            cache.put(digest, key)
        if key is None:
            raise ApiError(
                401, "unauthorized", "unknown or revoked API key",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )  # fmt: skip
        limiter: RateLimiter = state.limiter
        wait = limiter.acquire(key.key_id)
        if wait > 0:
            raise ApiError(
                429, "rate_limited", "too many requests for this key",
                headers={"Retry-After": retry_after_header(wait)},
            )  # fmt: skip
        if not key.allows(self.scope):
            raise ApiError(403, "forbidden", f"this route needs the `{self.scope}` scope")
        return key


READ = Authorized("read")
ReadKey = Annotated[ApiKey, Depends(READ)]
AdminKey = Annotated[ApiKey, Depends(Authorized("admin"))]


def reading(request: Request) -> AbstractContextManager[Connection]:
    """A pooled connection in one READ ONLY transaction, for a route body to read in.

    Routes take it in their body, after their key dependency has run: a request never holds
    one connection while waiting for a second (the key's lookup), which under load would
    let every request wait on every other. Taking it in the body, not as a generator
    dependency, also spares two thread-pool hops per request.
    """
    return pool.read_only(get_pool(request))


def reading_async(request: Request) -> AbstractAsyncContextManager[AsyncConnection]:
    """A pooled read-only connection of the asyncio pool (a transaction per statement), for
    `async def` routes: no thread hop, and a one-statement read is one round trip."""
    return pool.reading(get_async_pool(request))


def plain_id(text: str, *, minimum: int) -> int | None:
    """`text` as an id if it is plainly one (ASCII digits, no sign or leading zero, within
    minimum..2^63-1), else None. What this accepts, FastAPI's validation accepts as the same
    number; anything else goes through FastAPI (and its 422)."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    if text[0] == "0" and len(text) > 1:
        return None
    value = int(text)
    return value if minimum <= value <= BIGINT_MAX else None


# A route's shortcut for its most common request (a GET without a query string): given the
# request, its response, or None to leave the request to FastAPI. The shortcut checks the
# path parameter itself (only a plainly valid id; anything else returns None, and FastAPI
# validates it as usual, with its 422), calls the key's dependency and the route's own body,
# and serialises the response model once. A route module lists its shortcuts in SHORTCUTS;
# `edge.DelotonApi` takes them.
FastPath = Callable[[Request], Awaitable[Response | None]]


def _allowed_query(route: APIRoute) -> frozenset[str]:
    allowed: frozenset[str] | None = getattr(route, "_allowed_query", None)
    if allowed is None:
        allowed = frozenset(_query_names(route.dependant))
        route._allowed_query = allowed  # type: ignore[attr-defined]
    return allowed


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def refuse_unknown_query(request: Request) -> None:
    """400 for a query parameter the route does not take (a typo must not pass silently)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params.keys()) - _allowed_query(route))
    if unknown:
        shown = ", ".join(u[:40] for u in unknown[:5])
        raise ApiError(400, "unknown_parameter", f"unknown query parameter(s): {shown}")
    # Every parameter takes one value; FastAPI would keep the last of two, silently.
    items = request.query_params.multi_items()
    if len(items) != len(request.query_params):
        counts = Counter(k for k, _ in items)
        repeated = sorted(k for k, n in counts.items() if n > 1)
        shown = ", ".join(r[:40] for r in repeated[:5])
        raise ApiError(400, "repeated_parameter", f"query parameter(s) given twice: {shown}")


class ApiRoute(APIRoute):
    """Every route of the API: refuses unknown query parameters (400) before anything else.

    A check in front of the route's handler rather than an app-wide dependency: a request
    without a query string pays nothing for it, and FastAPI solves one dependency less.
    (A route's shortcut is taken before the app's middleware, by `edge.DelotonApi`.)
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                refuse_unknown_query(request)
            return await handler(request)

        return checked
