"""The application factory: settings and a pool in, a FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api import errors
from services.api.auth import KeyCache
from services.api.cache import AnswerCache
from services.api.edge import DelotonApi
from services.api.middleware import Metrics, MetricsMiddleware, PathHygiene
from services.api.ratelimit import RateLimiter
from services.api.routes import daily, export, fleet, health, riders, rides, stats
from services.api.routes import settings as runtime_settings
from services.common import pool
from services.common.config import Settings
from services.common.pool import Connection, ConnectionPool

DESCRIPTION = """
Rides and riders of the Deloton fleet, live and historical.

Send an API key as `Authorization: Bearer <key>` (`deloton api-key create`). Scopes: `read`
for every GET, `pii` to see riders' personal data (audited), `admin` to delete rides and to
read and change the run-time settings (audited). Errors are JSON:
`{"code": ..., "detail": ..., "errors": [...]}`.
"""


def app_from_environment() -> FastAPI:
    """The app with settings from the environment: the entrypoint of each uvicorn worker
    process when `deloton api --workers N` runs more than one."""
    return create_app(Settings())


def create_app(settings: Settings, *, readers: ConnectionPool[Connection] | None = None) -> FastAPI:
    """The API. Without `readers` it opens its own pool at startup and closes it at shutdown.

    Besides it, an asyncio pool of read-only connections (also `API_POOL_SIZE` at most) serves
    the hot reads (`/ride/{id}`, `/rider/{id}`) and key lookups without a thread hop.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = readers is None
        app.state.pool = readers or pool.open_pool(
            settings.require_database(),
            min_size=min(2, settings.api_pool_size),
            max_size=settings.api_pool_size,
            application_name="deloton-api",
            timeout_s=5.0,
        )
        try:
            app.state.async_pool = await pool.open_async_pool(
                settings.require_database(),
                min_size=min(2, settings.api_pool_size),
                max_size=settings.api_pool_size,
                application_name="deloton-api",
                timeout_s=5.0,
            )
        except BaseException:
            if own:
                app.state.pool.close()
            raise
        try:
            yield
        finally:
            await app.state.async_pool.close()
            if own:
                app.state.pool.close()

    prefix = settings.api_path_prefix
    app = DelotonApi(
        title="Deloton Stream API",
        docs_url=f"{prefix}/docs",
        redoc_url=f"{prefix}/redoc",
        openapi_url=f"{prefix}/openapi.json",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry hooks: unused (Prometheus at /metrics), and asking
        # whether they are configured cost every request a look at the environment.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.keys = KeyCache(settings.api_key_cache_s)
    app.state.boards = AnswerCache[object](settings.api_leaderboard_cache_s)
    # A day's ride ids: up to 8 bytes a ride, for at most 64 days at a time.
    app.state.days = AnswerCache[object](settings.api_daily_cache_s, max_entries=64)
    app.state.limiter = RateLimiter(settings.api_rate_limit_per_s, settings.api_rate_limit_burst)
    app.state.metrics = Metrics()
    if readers is not None:
        app.state.pool = readers
    errors.install(app)
    for module in (rides, riders, daily, stats, export, fleet, runtime_settings, health):
        app.include_router(module.router, prefix=prefix)
        for path, shortcut in getattr(module, "SHORTCUTS", {}).items():
            app.shortcut(prefix + path, shortcut)
    app.add_middleware(PathHygiene)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)  # outermost: times all
    return app
