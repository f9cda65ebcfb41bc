"""/daily, /leaderboard and /city/{city}: rides of a day, rankings, rides in a city."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.api import schemas
from services.api.cache import AnswerCache
from services.api.deps import ApiRoute, ReadKey, reading
from services.api.errors import documented
from services.api.routes.common import (
    PLAIN_TEXT,
    Day,
    Limit,
    Offset,
    json_response,
    page_of,
    threaded,
)
from services.common.reads import riders, rides

router = APIRouter(tags=["rides"], route_class=ApiRoute)


@router.get(
    "/daily",
    response_model=schemas.DailyRides,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Rides in progress or completed on a day",
)
@threaded
def get_daily(
    request: Request,
    _key: ReadKey,
    day: Annotated[
        Day | None, Query(alias="date", description="YYYY-MM-DD, UTC; default today")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Every ride with any part in that UTC day, oldest first, paginated. The list of the
    day's rides may be up to about twice API_DAILY_CACHE_S (2 s) old; the rides on a page
    are read as they are now."""
    day = day if day is not None else datetime.now(UTC).date()

    # Finding a page at an offset sorted all the day's rides every time (~9 ms of database
    # CPU at 5,000 rides, most of a core at 100 req/s): the day's list is kept for
    # API_DAILY_CACHE_S, refreshed one computation at a time, and a page reads its rides.
    def listed() -> array[int]:
        with reading(request) as conn:
            return array("q", rides.ride_ids_of_day(conn, day=day))

    days: AnswerCache[array[int]] = request.app.state.days
    ids = days.get(day, listed)
    with reading(request) as conn:
        found = rides.rides_by_ids(conn, ride_ids=ids[offset : offset + limit])
    page = page_of(found, limit=limit, offset=offset, listed=len(ids))
    return json_response(schemas.DailyRides.model_validate({**page, "date": day}))


@router.get(
    "/leaderboard",
    response_model=schemas.Leaderboard,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Riders ranked",
    tags=["riders"],
)
@threaded
def get_leaderboard(
    request: Request,
    _key: ReadKey,
    by: Annotated[riders.LeaderboardBy, Query(description="the figure to rank by")] = "rides",
    since: Annotated[
        Day | None, Query(description="only rides started on or after this UTC day")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> schemas.Leaderboard:
    """Riders by number of rides, total or longest ride time, maximum power or energy, over
    their summarised rides; ties go to the lower user_id. With `since`, an answer may be up
    to about twice API_LEADERBOARD_CACHE_S (5 s) old."""

    def read() -> list[riders.LeaderboardEntry]:
        with reading(request) as conn:
            return riders.leaderboard(conn, by=by, since=since, limit=limit)

    if since is None:
        entries = read()  # an index's first entries: nothing to save
    else:
        # Aggregated over every ride since the day at each call (~10 ms of database CPU for
        # a week): reused for API_LEADERBOARD_CACHE_S, one computation at a time per board.
        boards: AnswerCache[list[riders.LeaderboardEntry]] = request.app.state.boards
        entries = boards.get((by, since, limit), read)
    return schemas.Leaderboard(
        by=by,
        since=since,
        limit=limit,
        entries=[schemas.LeaderboardEntryOut(**vars(e)) for e in entries],
    )


@router.get(
    "/city/{city}",
    response_model=schemas.CityRides,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Rides of riders living in a city",
)
@threaded
def get_city(
    request: Request,
    _key: ReadKey,
    city: Annotated[
        str,
        Path(
            min_length=1,
            max_length=100,
            pattern=PLAIN_TEXT,
            description="case- and accent-insensitive",
            examples=["Leeds"],
        ),
    ],
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Newest first, paginated; an unknown city is an empty page."""
    with reading(request) as conn:
        found = rides.rides_in_city(conn, city=city, limit=limit, offset=offset)
    return json_response(
        schemas.CityRides.model_validate(
            {**page_of(found, limit=limit, offset=offset), "city": city}
        )
    )
