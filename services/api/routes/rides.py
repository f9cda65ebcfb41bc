"""/ride/{ride_id}: one ride, its duration, and its deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from services.api import repository, schemas
from services.api.deps import (
    READ,
    AdminKey,
    ApiRoute,
    FastPath,
    ReadKey,
    get_pool,
    plain_id,
    reading_async,
)
from services.api.errors import ApiError, documented
from services.api.routes.common import RideId, json_response, ride_out, threaded
from services.common import pool
from services.common.reads import rides

router = APIRouter(tags=["rides"], route_class=ApiRoute)
READINGS_MAX = 1000


async def _ride_fast(request: Request) -> Response | None:
    """GET /ride/{id} without a query string (see deps.FastPath)."""
    ride_id = plain_id(request.path_params["ride_id"], minimum=1)
    if ride_id is None:
        return None
    await READ(request)
    return json_response(await _read_ride(request, ride_id))


# Plain GETs of these routes, taken at the app's edge (edge.DelotonApi).
SHORTCUTS: dict[str, FastPath] = {"/ride/{ride_id}": _ride_fast}


async def _read_ride(
    request: Request, ride_id: int, *, expanded: bool = False, after: int | None = None,
    limit: int = 500,
) -> schemas.RideOut:  # fmt: skip
    items = None
    async with reading_async(request) as conn:
        ride = await rides.get_ride_async(conn, ride_id=ride_id)
        if ride is None:
            raise ApiError(404, "not_found", f"no ride {ride_id}")
        if expanded:
            items = await rides.ride_readings_async(
                conn, ride_id=ride_id, after_elapsed_s=after, limit=limit
            )
    page = None
    if items is not None:
        page = schemas.ReadingsPage(
            items=[schemas.ReadingOut(**vars(r)) for r in items],
            limit=limit,
            next_after=items[-1].elapsed_s if len(items) == limit else None,
        )
    return ride_out(ride, page)


@router.get(
    "/ride/{ride_id}",
    response_model=schemas.RideOut,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="A ride and its summary",
)
async def get_ride(
    request: Request,
    ride_id: RideId,
    _key: ReadKey,
    expanded: Annotated[
        bool, Query(description="add the per-second readings still held in daily")
    ] = False,
    after: Annotated[
        int | None,
        Query(ge=-1, le=2**31 - 1, description="with expanded: readings after this elapsed_s"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=READINGS_MAX, description="with expanded: readings per page")
    ] = 500,
) -> schemas.RideOut:
    """Start, end (null while in progress), duration, rider, bike and summary of a ride."""
    return await _read_ride(request, ride_id, expanded=expanded, after=after, limit=limit)


@router.get(
    "/ride/{ride_id}/duration",
    response_model=schemas.RideDuration,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="How long a ride lasted",
)
async def get_ride_duration(
    request: Request, ride_id: RideId, _key: ReadKey
) -> schemas.RideDuration:
    """Seconds from start to end (to the latest reading while the ride is in progress)."""
    async with reading_async(request) as conn:
        ride = await rides.get_ride_async(conn, ride_id=ride_id)
    if ride is None:
        raise ApiError(404, "not_found", f"no ride {ride_id}")
    return schemas.RideDuration(
        ride_id=ride.ride_id, duration_s=ride.duration_s, in_progress=ride.in_progress
    )


@router.delete(
    "/ride/{ride_id}",
    response_model=schemas.DeletedRide,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="Delete a ride everywhere (admin)",
)
@threaded
def delete_ride(request: Request, ride_id: RideId, key: AdminKey) -> schemas.DeletedRide:
    """Remove the ride, its readings and summary from both schemas; a tombstone keeps it gone.

    Needs the `admin` scope; audited. A second call answers 404.
    """
    with pool.read_write(get_pool(request)) as conn:
        ride = rides.get_ride(conn, ride_id=ride_id)
        if ride is None or not repository.tombstone_ride(conn, ride_id=ride_id):
            raise ApiError(404, "not_found", f"no ride {ride_id}")
        gone = repository.delete_ride_rows(conn, ride_id=ride_id, started_at=ride.started_at)
        repository.audit(
            conn, key=key, action="delete", route="DELETE /ride/{ride_id}", resource_id=str(ride_id)
        )
    request.app.state.boards.clear()  # this process's rankings show the deletion at once
    request.app.state.days.clear()  # and its lists of a day's rides
    return schemas.DeletedRide(
        ride=ride_out(ride),
        summary_deleted=gone.summary,
        daily_ride_deleted=gone.daily_ride,
        readings_deleted=gone.readings,
        alerts_deleted=gone.alerts,
    )
