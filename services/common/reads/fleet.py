"""Fleet health reads: each bike's latest data-quality score and its open incident."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.pool import Connection


@dataclass(frozen=True)
class Incident:
    """A bike whose data quality fell below the threshold; open while cleared_at is None."""

    incident_id: int
    bike_serial: str
    opened_at: datetime
    cleared_at: datetime | None
    score: float
    worst_score: float
    problems: list[str]


@dataclass(frozen=True)
class BikeHealth:
    """A bike's latest quality measurement and its open incident, if any."""

    bike_serial: str
    model: str | None
    last_seen_at: datetime | None
    computed_at: datetime
    score: float
    readings: int
    measures: dict[str, Any]
    problems: list[str]
    incident: Incident | None


_INCIDENT = "incident_id, bike_serial, opened_at, cleared_at, score, worst_score, problems"


def fleet_health(conn: Connection, *, only_flagged: bool = False) -> list[BikeHealth]:
    """Every measured bike, worst score first (bikes with an open incident first of all)."""
    rows = conn.execute(
        f"""SELECT q.bike_serial, b.model, b.last_seen_at, q.computed_at, q.score, q.readings,
                   q.measures, q.problems, to_jsonb(i) AS incident
            FROM ops.bike_quality q
            LEFT JOIN daily.bikes b USING (bike_serial)
            LEFT JOIN LATERAL (
                SELECT {_INCIDENT} FROM ops.bike_incidents
                WHERE bike_serial = q.bike_serial AND cleared_at IS NULL) i ON true
            WHERE NOT %(flagged)s OR i.incident_id IS NOT NULL
            ORDER BY (i.incident_id IS NULL), q.score, q.bike_serial""",
        {"flagged": only_flagged},
    ).fetchall()
    return [
        BikeHealth(**{**r, "incident": _incident(r["incident"]) if r["incident"] else None})
        for r in rows
    ]


def recent_incidents(conn: Connection, *, limit: int = 50) -> list[Incident]:
    """The latest incidents, open or cleared, newest first."""
    rows = conn.execute(
        f"SELECT {_INCIDENT} FROM ops.bike_incidents ORDER BY opened_at DESC, incident_id DESC "
        "LIMIT %s",
        (limit,),
    ).fetchall()
    return [Incident(**r) for r in rows]


def _incident(doc: dict[str, Any]) -> Incident:
    return Incident(
        incident_id=int(doc["incident_id"]),
        bike_serial=doc["bike_serial"],
        opened_at=datetime.fromisoformat(doc["opened_at"]),
        cleared_at=datetime.fromisoformat(doc["cleared_at"]) if doc["cleared_at"] else None,
        score=float(doc["score"]),
        worst_score=float(doc["worst_score"]),
        problems=list(doc["problems"]),
    )
