"""Query parameters and conversions shared by the routes."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import Path, Query, Response
from pydantic import BaseModel, BeforeValidator

from services.api import schemas
from services.common.reads.rides import Ride

BIGINT_MAX = 2**63 - 1
PAGE_MAX = 500
OFFSET_MAX = 100_000
RideId = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="ride id", examples=[42])]
UserId = Annotated[int, Path(ge=0, le=BIGINT_MAX, description="rider's user_id", examples=[5124])]
# Free text a client sends (a city, a bike serial, a setting's name): no control characters,
# which PostgreSQL refuses (NUL) or a log would carry; 422 like any other invalid parameter.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]+$"
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")]
Offset = Annotated[int, Query(ge=0, le=OFFSET_MAX, description="rows to skip")]
_ISO_DAY = re.compile(r"\d{4}-\d\d-\d\d\Z", re.ASCII)


def _iso_day(value: Any) -> Any:
    # pydantic reads a number as seconds since 1970 ("1.5e-84" became 1970-01-01): only the
    # documented YYYY-MM-DD may reach the date parser.
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("a date as YYYY-MM-DD")
    return value


# A day in a query string: YYYY-MM-DD only.
Day = Annotated[date, BeforeValidator(_iso_day)]


P = ParamSpec("P")
R = TypeVar("R")


# Threads for route bodies: as many as Starlette's default thread limiter allows (40); each
# waits on the database, and a pool of API_POOL_SIZE connections bounds the real concurrency.
_ROUTE_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="api-route")


def threaded(route: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run a blocking route body in a thread, presented to FastAPI as a coroutine.

    A plain `def` route costs two thread-pool hops (the body, then validating its response);
    as a coroutine the response is validated and serialised on the event loop, which for a
    model instance is a type check and a JSON dump. The hop goes straight to an executor
    (with the caller's context variables), not through anyio's capacity limiter and cancel
    scopes: about a tenth of a request's CPU less.
    """

    @functools.wraps(route)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        call = functools.partial(contextvars.copy_context().run, route, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_ROUTE_THREADS, call)

    return run


def json_response(model: BaseModel) -> Response:
    """A response model as FastAPI would answer it for a route returning it (same bytes),
    serialised once: FastAPI dumps a returned model, validates the dump against the route's
    response model and serialises that (about 1 ms for a page of 50 rides, 0.15 ms here).
    The route keeps its `response_model` for /openapi.json."""
    return Response(model.__pydantic_serializer__.to_json(model), media_type="application/json")


def ride_out(ride: Ride, readings: schemas.ReadingsPage | None = None) -> schemas.RideOut:
    """The response model of a ride read from the shared read layer."""
    s = ride.summary
    return schemas.RideOut(
        ride_id=ride.ride_id,
        user_id=ride.user_id,
        bike_serial=ride.bike_serial,
        model=ride.model,
        started_at=ride.started_at,
        ended_at=ride.ended_at,
        duration_s=ride.duration_s,
        in_progress=ride.in_progress,
        summarised=ride.summarised,
        summary=schemas.RideSummaryOut(
            readings_count=s.readings_count,
            heart_rate_readings=s.heart_rate_readings,
            avg_heart_rate=s.avg_heart_rate,
            max_heart_rate=s.max_heart_rate,
            avg_power=s.avg_power,
            max_power=s.max_power,
            total_energy_kj=s.total_energy_kj,
            avg_rpm=s.avg_rpm,
            avg_resistance=s.avg_resistance,
            alert_count=s.alert_count,
        ),
        readings=readings,
    )


def page_of(
    rides: list[Ride], *, limit: int, offset: int, listed: int | None = None
) -> dict[str, object]:
    """The fields of a RidePage. `listed`: how many rides the whole list holds, when the page
    was cut from a known list (a ride deleted since leaves its page short, not the last)."""
    more = offset + limit < listed if listed is not None else len(rides) == limit
    more = more and offset + limit <= OFFSET_MAX
    return {
        "items": [ride_out(r) for r in rides],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if more else None,
    }


_ISO_START = re.compile(r"\s*\d{4}-\d{2}")


def _iso_only(value: object) -> object:
    """Dates and times as ISO 8601 text only (YYYY-MM...): pydantic would take a number, in
    any spelling (`1700000000`, `3.4e-286`), as a Unix time."""
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("an ISO 8601 date or time, not a number")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]
