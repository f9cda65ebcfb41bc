"""Response models of every route, with the examples /docs shows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_RIDE_EXAMPLE: dict[str, Any] = {
    "ride_id": 4404134263063398,
    "user_id": 5124,
    "bike_serial": "SN0042",
    "model": "mendoza v9",
    "started_at": "2026-11-20T09:00:00Z",
    "ended_at": "2026-11-20T09:30:01Z",
    "duration_s": 1801,
    "in_progress": False,
    "summarised": True,
    "summary": {
        "readings_count": 1800,
        "heart_rate_readings": 1790,
        "avg_heart_rate": 128.4,
        "max_heart_rate": 171,
        "avg_power": 92.7,
        "max_power": 241.3,
        "total_energy_kj": 166.9,
        "avg_rpm": 61.2,
        "avg_resistance": 48.5,
        "alert_count": 0,
    },
    "readings": None,
}


class ErrorBody(BaseModel):
    """Every error: a machine-readable code, a message, and for bad input what was wrong."""

    code: str = Field(examples=["not_found"])
    detail: str = Field(examples=["no ride 123"])
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        examples=[
            [{"loc": ["query", "limit"], "msg": "Input should be less than or equal to 500"}]
        ],
    )


class RideSummaryOut(BaseModel):
    """A ride's figures. Heart-rate figures count only readings with contact."""

    readings_count: int
    heart_rate_readings: int
    avg_heart_rate: float | None
    max_heart_rate: int | None
    avg_power: float | None = Field(description="watts")
    max_power: float | None = Field(description="watts")
    total_energy_kj: float | None
    avg_rpm: float | None
    avg_resistance: float | None
    alert_count: int = Field(description="heart-rate alerts raised during the ride")


class ReadingOut(BaseModel):
    """One reading a second."""

    elapsed_s: int
    recorded_at: datetime
    heart_rate: int | None = Field(description="null: no heart-rate contact")
    rpm: int
    power: float
    resistance: int


class ReadingsPage(BaseModel):
    """A page of readings; pass `next_after` as `after` for the next page (null: the last)."""

    items: list[ReadingOut]
    limit: int
    next_after: int | None


class RideOut(BaseModel):
    """A ride, the same whether still in the daily schema or summarised into historical."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RIDE_EXAMPLE]})

    ride_id: int
    user_id: int
    bike_serial: str
    model: str | None
    started_at: datetime
    ended_at: datetime | None = Field(description="null while the ride is in progress")
    duration_s: int = Field(description="seconds; up to the latest reading while in progress")
    in_progress: bool
    summarised: bool = Field(description="true once the daily roll-up has stored its summary")
    summary: RideSummaryOut
    readings: ReadingsPage | None = Field(
        default=None, description="with ?expanded=true: readings still held at full resolution"
    )


class RidePage(BaseModel):
    """A page of rides; `next_offset` is null on the last page."""

    items: list[RideOut]
    limit: int
    offset: int
    next_offset: int | None


class DailyRides(RidePage):
    """Rides in progress or completed on a UTC day."""

    date: date


class CityRides(RidePage):
    """Rides of the riders living in a city."""

    city: str


class RideDuration(BaseModel):
    """How long a ride lasted (so far, while in progress)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ride_id": 4404134263063398, "duration_s": 1801, "in_progress": False}]
        }
    )

    ride_id: int
    duration_s: int
    in_progress: bool


class RiderDuration(BaseModel):
    """A rider's total riding time."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": 5124, "total_duration_s": 36020, "rides": 20}]}
    )

    user_id: int
    total_duration_s: int
    rides: int


class PersonalDetails(BaseModel):
    """Personal data: only for keys with the `pii` scope, and every such read is audited."""

    title: str | None
    first_name: str
    last_name: str
    email_address: str | None
    address_line: str | None
    postcode: str | None
    date_of_birth: date
    age: int


class RiderOut(BaseModel):
    """A rider, their number of rides, average heart rate and total riding time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 5124,
                    "gender": "female",
                    "age_bracket": "35-44",
                    "city": "Leeds",
                    "height_cm": 170,
                    "weight_kg": 62,
                    "account_created_at": "2024-03-01T10:00:00Z",
                    "original_source": "direct",
                    "rides": 20,
                    "avg_heart_rate": 131.2,
                    "total_duration_s": 36020,
                    "personal": None,
                }
            ]
        }
    )

    user_id: int
    gender: Literal["male", "female", "other"]
    age_bracket: str = Field(description="<18, 18-24, ..., 75+ (today, UTC)")
    city: str | None
    height_cm: int | None
    weight_kg: int | None
    account_created_at: datetime | None
    original_source: str | None
    rides: int
    avg_heart_rate: float | None
    total_duration_s: int
    personal: PersonalDetails | None = Field(
        default=None, description="null unless the key has the pii scope"
    )


class DeletedRide(BaseModel):
    """What DELETE removed; the ride as it was, and a tombstone keeps it from coming back."""

    ride: RideOut
    summary_deleted: bool
    daily_ride_deleted: bool
    readings_deleted: int
    alerts_deleted: int


class LeaderboardEntryOut(BaseModel):
    """One ranked rider (ties are ordered by user_id)."""

    rank: int
    user_id: int
    value: float
    rides: int


class Leaderboard(BaseModel):
    """Riders ranked over their summarised rides."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "by": "rides",
                    "since": None,
                    "limit": 2,
                    "entries": [
                        {"rank": 1, "user_id": 77, "value": 41, "rides": 41},
                        {"rank": 2, "user_id": 12, "value": 39, "rides": 39},
                    ],
                }
            ]
        }
    )

    by: Literal["rides", "duration", "longest_ride", "max_power", "energy"]
    since: date | None
    limit: int
    entries: list[LeaderboardEntryOut]


class Health(BaseModel):
    """Whether the database answers and its migrations are the ones this code expects."""

    status: Literal["ok", "unavailable"]
    database: bool
    migration_applied: int | None
    migration_expected: int


class IncidentOut(BaseModel):
    """A fleet health incident: a bike whose data quality fell below the threshold."""

    incident_id: int
    bike_serial: str
    opened_at: datetime
    cleared_at: datetime | None = Field(description="null while the incident is open")
    score: float = Field(description="quality score when it opened")
    worst_score: float
    problems: list[str] = Field(description="detectors at half their limit or more")


class BikeHealthOut(BaseModel):
    """One bike's latest data quality."""

    bike_serial: str = Field(examples=["SN0042"])
    model: str | None
    last_seen_at: datetime | None
    computed_at: datetime
    score: float = Field(ge=0, le=1, description="1: clean data; below the threshold: incident")
    readings: int = Field(description="readings in the judged window")
    measures: dict[str, float] = Field(
        description="no_contact, gaps, duplicates, out_of_order, stuck, implausible: shares "
        "of the window's readings; clock_skew: seconds"
    )
    problems: list[str]
    flagged: bool = Field(description="an incident is open")
    incident: IncidentOut | None


class FleetHealth(BaseModel):
    """Every measured bike, flagged ones first, with the thresholds in force."""

    bikes: list[BikeHealthOut]
    flagged: int
    min_score: float
    recover_score: float
    limits: dict[str, float]
    recent_incidents: list[IncidentOut]


class SettingOut(BaseModel):
    """A setting that changes at run time."""

    name: str = Field(examples=["alert_episode_readings"])
    value: Any = Field(examples=[3])
    default: Any = Field(description="the environment's value, in force without a stored one")
    stored: bool
    services: list[str]
    description: str
    updated_at: datetime | None
    updated_by: str | None = Field(description="name of the key that set it")


class RuntimeSettingsOut(BaseModel):
    """Every run-time setting."""

    settings: list[SettingOut]
    refresh_s: float = Field(description="services pick a change up within this many seconds")


class SettingAudit(BaseModel):
    """One audited change."""

    audit_id: int
    at: datetime
    key_name: str
    name: str
    old_value: Any = Field(description="null: none was stored (the environment's value)")
    new_value: Any


class SettingsAudit(BaseModel):
    """Changes, newest first."""

    changes: list[SettingAudit]


class StatsBucketOut(BaseModel):
    """One UTC hour or day of the fleet, a bike or a city."""

    bucket: datetime = Field(description="start of the UTC hour or day")
    key: str = Field(description="'' for the fleet and for riders of unknown city")
    rides: int = Field(description="rides with a reading in the bucket")
    riders: int = Field(description="distinct riders of those rides")
    riding_s: int = Field(description="seconds ridden (readings, one a second)")
    hr_readings: int = Field(description="readings with heart-rate contact")
    avg_heart_rate: float | None
    max_heart_rate: int | None
    avg_power: float | None
    max_power: float | None
    energy_kj: float


class Stats(BaseModel):
    """Aggregates of summarised rides over [from, to), oldest bucket first."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "resolution": "hourly",
                    "scope": "city",
                    "from": "2026-11-20T00:00:00Z",
                    "to": "2026-11-21T00:00:00Z",
                    "truncated": False,
                    "items": [
                        {
                            "bucket": "2026-11-20T09:00:00Z",
                            "key": "Leeds",
                            "rides": 14,
                            "riders": 12,
                            "riding_s": 16020,
                            "hr_readings": 15870,
                            "avg_heart_rate": 131.2,
                            "max_heart_rate": 182,
                            "avg_power": 88.4,
                            "max_power": 251.0,
                            "energy_kj": 1416.2,
                        }
                    ],
                }
            ]
        },
    )

    resolution: Literal["hourly", "daily"]
    scope: Literal["fleet", "bike", "city"]
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    truncated: bool = Field(description="more buckets than one answer holds: narrow the range")
    items: list[StatsBucketOut]
