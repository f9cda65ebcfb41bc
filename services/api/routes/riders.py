"""/rider/{user_id}: a rider (personal data only with the pii scope), their rides and time."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from services.api import repository, schemas
from services.api.auth import ApiKey
from services.api.deps import (
    READ,
    ApiRoute,
    FastPath,
    ReadKey,
    get_pool,
    plain_id,
    reading,
    reading_async,
)
from services.api.errors import ApiError, documented
from services.api.routes.common import (
    Limit,
    Offset,
    UserId,
    json_response,
    page_of,
    threaded,
)
from services.common import pool
from services.common.ages import age_bracket, age_on
from services.common.pool import Connection
from services.common.reads import riders, rides

router = APIRouter(tags=["riders"], route_class=ApiRoute)


async def _rider_fast(request: Request) -> Response | None:
    """GET /rider/{id} without a query string (see deps.FastPath)."""
    user_id = plain_id(request.path_params["user_id"], minimum=0)
    if user_id is None:
        return None
    key = await READ(request)
    return json_response(await get_rider(request, user_id, key))


# Plain GETs of these routes, taken at the app's edge (edge.DelotonApi).
SHORTCUTS: dict[str, FastPath] = {"/rider/{user_id}": _rider_fast}


@threaded
def _audit_pii_read(request: Request, key: ApiKey, user_id: int) -> None:
    with pool.read_write(get_pool(request)) as wconn:
        repository.audit(
            wconn, key=key, action="pii_read", route="GET /rider/{user_id}",
            resource_id=str(user_id),
        )  # fmt: skip


@router.get(
    "/rider/{user_id}",
    response_model=schemas.RiderOut,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="A rider, their number of rides, average heart rate and riding time",
)
async def get_rider(request: Request, user_id: UserId, key: ReadKey) -> schemas.RiderOut:
    """Without the `pii` scope: no name, email, address, postcode or date of birth (an age
    bracket instead). With it, all of them, and the read is written to the audit trail."""
    # One connection at a time (read, then the audit write): see deps.reading.
    async with reading_async(request) as conn:
        rider, stats = await riders.rider_with_stats_async(conn, user_id=user_id)
    if rider is None:
        raise ApiError(404, "not_found", f"no rider {user_id}")
    age = age_on(rider.date_of_birth, datetime.now(UTC).date())
    personal = None
    if key.allows("pii"):
        # Audited before the data leaves: no audit row, no personal data. A write, so on the
        # read-write pool, in a thread: only reads with the pii scope pay the hop.
        await _audit_pii_read(request, key, user_id)
        personal = schemas.PersonalDetails(
            title=rider.title,
            first_name=rider.first_name,
            last_name=rider.last_name,
            email_address=rider.email_address,
            address_line=rider.address_line,
            postcode=rider.postcode,
            date_of_birth=rider.date_of_birth,
            age=age,
        )
    return schemas.RiderOut(
        user_id=rider.user_id,
        gender=rider.gender,  # type: ignore[arg-type]  # CHECK constraint: male|female|other
        age_bracket=age_bracket(age),
        city=rider.city,
        height_cm=rider.height_cm,
        weight_kg=rider.weight_kg,
        account_created_at=rider.account_created_at,
        original_source=rider.original_source,
        rides=stats.rides,
        avg_heart_rate=stats.avg_heart_rate,
        total_duration_s=stats.total_duration_s,
        personal=personal,
    )


def _known(conn: Connection, user_id: int) -> None:
    if riders.get_rider(conn, user_id=user_id) is None:
        raise ApiError(404, "not_found", f"no rider {user_id}")


@router.get(
    "/rider/{user_id}/rides",
    response_model=schemas.RidePage,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="A rider's rides, newest first",
)
@threaded
def get_rider_rides(
    request: Request, user_id: UserId, _key: ReadKey, limit: Limit = 50, offset: Offset = 0
) -> Response:
    """Paginated with limit/offset; `next_offset` is null on the last page."""
    with reading(request) as conn:
        _known(conn, user_id)
        found = rides.rides_of_rider(conn, user_id=user_id, limit=limit, offset=offset)
    return json_response(
        schemas.RidePage.model_validate(page_of(found, limit=limit, offset=offset))
    )


@router.get(
    "/rider/{user_id}/duration",
    response_model=schemas.RiderDuration,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="A rider's total riding time",
)
@threaded
def get_rider_duration(request: Request, user_id: UserId, _key: ReadKey) -> schemas.RiderDuration:
    """Seconds over all of the rider's rides (in progress ones up to their latest reading)."""
    with reading(request) as conn:
        _known(conn, user_id)
        stats = riders.rider_stats(conn, user_id=user_id)
    return schemas.RiderDuration(
        user_id=user_id, total_duration_s=stats.total_duration_s, rides=stats.rides
    )
