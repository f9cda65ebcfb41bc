"""/fleet/health: each bike's data quality and its open incident."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.api import schemas
from services.api.deps import ApiRoute, ReadKey, reading
from services.api.errors import documented
from services.api.routes.common import threaded
from services.common import runtime_store
from services.common.reads import fleet
from services.common.runtime import apply
from services.quality.detectors import LIMITS

router = APIRouter(tags=["fleet"], route_class=ApiRoute)


@router.get(
    "/fleet/health",
    response_model=schemas.FleetHealth,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Data quality of every bike, open incidents first",
)
@threaded
def get_fleet_health(
    request: Request,
    _key: ReadKey,
    flagged: Annotated[bool, Query(description="only bikes with an open incident")] = False,
    incidents: Annotated[
        int, Query(ge=0, le=500, description="recent incidents (open or cleared) to list")
    ] = 20,
) -> schemas.FleetHealth:
    """Each bike's latest score (1 is clean), its measures and problems, and whether it is
    flagged: an incident opens below the minimum score and clears at the recovery score."""
    with reading(request) as conn:
        bikes = fleet.fleet_health(conn, only_flagged=flagged)
        recent = fleet.recent_incidents(conn, limit=incidents) if incidents else []
        current = apply(request.app.state.settings, runtime_store.stored(conn))
    return schemas.FleetHealth(
        bikes=[
            schemas.BikeHealthOut.model_validate(
                {
                    **vars(b),
                    "flagged": b.incident is not None,
                    "incident": vars(b.incident) if b.incident else None,
                }
            )
            for b in bikes
        ],
        flagged=sum(b.incident is not None for b in bikes),
        min_score=current.quality_min_score,
        recover_score=current.quality_recover_score,
        limits=LIMITS,
        recent_incidents=[schemas.IncidentOut.model_validate(vars(i)) for i in recent],
    )
