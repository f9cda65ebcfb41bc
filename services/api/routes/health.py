"""/health and /metrics: for load balancers and Prometheus, no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.api import repository, schemas
from services.api.deps import ApiRoute, get_pool
from services.api.routes.common import threaded
from services.common import db, pool

router = APIRouter(tags=["operations"], route_class=ApiRoute)


def expected_migration() -> int:
    """The newest migration this code ships."""
    files = db.migration_files()
    return int(files[-1].name[:4]) if files else 0


@router.get(
    "/health",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "database down or not migrated"}},
    summary="Database reachable and migrations current",
)
@threaded
def health(request: Request) -> JSONResponse:
    """200 when the database answers and holds every migration this code expects, else 503."""
    applied: int | None = None
    reachable = False
    try:
        with pool.read_only(get_pool(request)) as conn:
            applied = repository.applied_migration(conn)
        reachable = True
    except Exception:  # any failure to reach or read the database is "unavailable"
        pass
    expected = expected_migration()
    ok = reachable and applied is not None and applied >= expected
    body = schemas.Health(
        status="ok" if ok else "unavailable",
        database=reachable,
        migration_applied=applied,
        migration_expected=expected,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
def metrics(request: Request) -> Response:
    """Request counts by route template, method and status; latency histograms."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
