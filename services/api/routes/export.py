"""/export: readings or aggregates as a streamed CSV or Parquet download (admin keys)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from services.api import repository
from services.api.deps import AdminKey, ApiRoute, get_pool
from services.api.errors import ApiError, documented
from services.api.routes.common import PLAIN_TEXT, IsoDatetime, threaded
from services.common import export_formats, pool
from services.common.reads import export as reads

router = APIRouter(tags=["export"], route_class=ApiRoute)
MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stream(request: Request, query: reads.ExportQuery, fmt: str) -> Iterator[bytes]:
    """The file's bytes, read from one pooled connection held while the download lasts."""
    with pool.read_only(get_pool(request)) as conn:
        chunks = reads.csv_chunks(conn, query=query)
        if fmt == "csv":
            yield from export_formats.csv_stream(chunks, lambda _n: None)
        else:
            columns = reads.columns(query.resolution)
            yield from export_formats.parquet_stream(chunks, columns, lambda _n: None)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the rows, streamed; CSV has a header line, times in UTC",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        **documented(400, 401, 403, 414, 422, 429, 503),
    },
    summary="Download readings or aggregates as CSV or Parquet (admin)",
)
@threaded
def get_export(
    request: Request,
    key: AdminKey,
    start: Annotated[IsoDatetime, Query(alias="from", description="ISO date or time, UTC default")],
    end: Annotated[IsoDatetime, Query(alias="to", description="end (exclusive)")],
    resolution: Annotated[
        Literal["raw", "hourly", "daily"],
        Query(description="raw readings (those still in daily) or aggregates"),
    ] = "raw",
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
    bike: Annotated[str | None, Query(min_length=1, max_length=64, pattern=PLAIN_TEXT)] = None,
    city: Annotated[str | None, Query(min_length=1, max_length=100, pattern=PLAIN_TEXT)] = None,
) -> StreamingResponse:
    """The same rows as `deloton export`, streamed as they leave the database (memory stays
    flat). Needs the `admin` scope; audited. A download cut short by a database failure ends
    early: a Parquet file without its footer does not open, a CSV file is shorter."""
    if bike is not None and city is not None and resolution != "raw":
        raise ApiError(422, "invalid_filter", "aggregates are per bike or per city: give one")
    try:
        query = reads.ExportQuery(resolution, _utc(start), _utc(end), bike, city)
    except ValueError as exc:
        raise ApiError(422, "invalid_range", str(exc)) from None
    except OverflowError:
        raise ApiError(422, "invalid_range", "from and to must be ordinary dates") from None
    described = f"{resolution} {query.start.isoformat()}..{query.end.isoformat()}"
    described += f" bike={bike}" if bike is not None else ""
    described += f" city={city}" if city is not None else ""
    with pool.read_write(get_pool(request)) as conn:
        repository.audit(conn, key=key, action="export", route="GET /export", resource_id=described)
    name = f"deloton-{resolution}-{query.start:%Y%m%dT%H%M}-{query.end:%Y%m%dT%H%M}.{fmt}"
    return StreamingResponse(
        _stream(request, query, fmt),
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
