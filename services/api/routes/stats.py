"""/stats/{hourly|daily}: aggregates of the fleet, a bike or a city over a time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.api import schemas
from services.api.deps import ApiRoute, ReadKey, reading
from services.api.errors import ApiError, documented
from services.api.routes.common import PLAIN_TEXT, IsoDatetime, threaded
from services.common.reads import stats

router = APIRouter(tags=["stats"], route_class=ApiRoute)

# One answer covers at most this range; the buckets of one key then fit in ITEMS_MAX (a city
# spelled several ways, which the case- and accent-insensitive match joins, may not).
MAX_RANGE = {"hourly": timedelta(days=31), "daily": timedelta(days=731)}
DEFAULT_RANGE = {"hourly": timedelta(days=1), "daily": timedelta(days=30)}
WIDTH = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
ITEMS_MAX = 2000


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bucket_end(now: datetime, resolution: stats.Resolution) -> datetime:
    """The end of the bucket `now` falls in."""
    start = now.replace(minute=0, second=0, microsecond=0)
    if resolution == "daily":
        start = start.replace(hour=0)
    return start + WIDTH[resolution]


@router.get(
    "/stats/{resolution}",
    response_model=schemas.Stats,
    response_model_by_alias=True,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Hourly or daily aggregates of the fleet, a bike or a city",
)
@threaded
def get_stats(
    request: Request,
    resolution: stats.Resolution,
    _key: ReadKey,
    bike: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="a bike serial"),
    ] = None,
    city: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=PLAIN_TEXT,
            description="riders' city, case- and accent-insensitive",
        ),
    ] = None,
    start: Annotated[
        IsoDatetime | None,
        Query(
            alias="from",
            description="first bucket (inclusive), ISO date or time, UTC when no offset; "
            "default: a day (hourly) or 30 days (daily) before `to`",
        ),
    ] = None,
    end: Annotated[
        IsoDatetime | None,
        Query(
            alias="to",
            description="end of the range (exclusive); default: the end of the current bucket",
        ),
    ] = None,
) -> schemas.Stats:
    """Rides, distinct riders, seconds ridden, average and maximum heart rate and power, and
    energy per UTC hour or day, for one bike (`bike`), one city (`city`) or the whole fleet
    (neither). A ride counts in every bucket it has readings in; rides count from their
    roll-up by compress. At most 31 days hourly and 731 days daily in one answer."""
    if bike is not None and city is not None:
        raise ApiError(422, "invalid_filter", "give bike or city, not both")
    try:
        stop = _utc(end) if end is not None else _bucket_end(datetime.now(UTC), resolution)
        begin = _utc(start) if start is not None else stop - DEFAULT_RANGE[resolution]
    except (OverflowError, ValueError) as exc:  # year 1 or 9999 moved past the calendar
        raise ApiError(422, "invalid_range", "from and to must be ordinary dates") from exc
    if begin >= stop:
        raise ApiError(422, "invalid_range", "from must be before to")
    if stop - begin > MAX_RANGE[resolution]:
        days = MAX_RANGE[resolution].days
        raise ApiError(422, "range_too_long", f"{resolution} covers at most {days} days")
    with reading(request) as conn:
        found = stats.buckets(
            conn,
            resolution=resolution,
            start=begin,
            end=stop,
            bike=bike,
            city=city,
            limit=ITEMS_MAX + 1,
        )
    scope: stats.Scope = "bike" if bike is not None else "city" if city is not None else "fleet"
    return schemas.Stats.model_validate(
        {
            "resolution": resolution,
            "scope": scope,
            "from": begin,
            "to": stop,
            "truncated": len(found) > ITEMS_MAX,
            "items": [schemas.StatsBucketOut(**vars(b)) for b in found[:ITEMS_MAX]],
        }
    )
