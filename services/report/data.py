"""The day's numbers: what the report shows, computed from the shared read layer.

`load` reads; everything else is pure (rides and riders in, a DayReport out), so tests can
check the arithmetic apart from the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.ages import AGE_BRACKETS, age_bracket, age_on
from services.common.config import ConfigError
from services.common.pool import Connection
from services.common.reads import day as reads
from services.common.reads.day import Rider, RideSummary

GENDERS = (("female", "Female"), ("male", "Male"), ("other", "Other"))
TREND_DAYS = 7  # the trailing average each headline number is compared with
HOUR = timedelta(hours=1)


def zone(name: str) -> ZoneInfo:
    """The business time zone, or a ConfigError naming the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"REPORT_TIMEZONE {name!r} is not a known time zone") from None


@dataclass(frozen=True)
class Window:
    """One business day: local midnight to local midnight, in UTC (23, 24 or 25 hours)."""

    day: date
    start: datetime
    end: datetime
    tz: ZoneInfo

    @classmethod
    def of(cls, day: date, tz: ZoneInfo) -> Window:
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        return cls(day, start, end, tz)

    @property
    def slots(self) -> list[datetime]:
        """The start (UTC) of each hour of the day: 23 on a spring-forward day, 25 in autumn."""
        return [self.start + i * HOUR for i in range((self.end - self.start) // HOUR)]

    def slot_labels(self) -> list[str]:
        """Local clock time of each hour; a repeated hour (autumn) carries its zone name."""
        local = [s.astimezone(self.tz) for s in self.slots]
        seen = Counter(t.strftime("%H:%M") for t in local)
        return [
            t.strftime("%H:%M") + (f" {t.tzname()}" if seen[t.strftime("%H:%M")] > 1 else "")
            for t in local
        ]

    def slot_of(self, moment: datetime) -> int:
        """Index of the hour `moment` falls in (the caller keeps it inside the window)."""
        return int((moment - self.start) // HOUR)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def yesterday(tz: ZoneInfo, now: datetime | None = None) -> date:
    """The business day before today in the business time zone."""
    moment = now or datetime.now(UTC)
    return moment.astimezone(tz).date() - timedelta(days=1)


@dataclass(frozen=True)
class Metric:
    """A headline number beside the previous day and the trailing 7-day average."""

    key: str
    label: str
    unit: str
    value: float
    previous: float
    week_avg: float

    def change(self, base: float) -> float | None:
        """Relative change from `base` (None when the base is zero)."""
        return None if base == 0 else (self.value - base) / base


@dataclass(frozen=True)
class TopRider:
    """A rider of the day as the report shows them: first name and initial only."""

    name: str
    rides: int
    riding_s: int
    energy_kj: float  # a ride is tens of kJ: kWh would print 0.01


@dataclass
class DayReport:
    """Everything the PDF and the email show for one day."""

    window: Window
    timezone: str
    rides: list[RideSummary]
    headline: list[Metric]
    riders_by_gender: dict[str, int]
    riders_by_age: dict[str, int]
    hourly_heart_rate: list[float | None]
    hourly_power: list[float | None]
    bikes_in_use: list[int]
    top_riders: list[TopRider]
    day_heart_rate: float | None
    day_power: float | None
    alerts_raised: int
    alerts_sent: int
    rejects: dict[str, int] = field(default_factory=dict)

    @property
    def day(self) -> date:
        return self.window.day

    @property
    def empty(self) -> bool:
        return not self.rides

    @property
    def hours(self) -> int:
        return len(self.window.slots)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())

    def metric(self, key: str) -> Metric:
        return next(m for m in self.headline if m.key == key)


def load(conn: Connection, *, day: date, tz_name: str, top: int = 5) -> DayReport:
    """Read the day (and the 7 before it, for the comparisons) and compute the report."""
    tz = zone(tz_name)
    window = Window.of(day, tz)
    earliest = Window.of(day - timedelta(days=TREND_DAYS), tz)
    rides = reads.ride_summaries(conn, start=earliest.start, end=window.end)
    user_ids = sorted({r.user_id for r in rides})
    people = reads.riders(conn, user_ids=user_ids) if user_ids else {}
    firsts = reads.first_rides(conn, user_ids=user_ids) if user_ids else {}
    rejects = reads.rejects_by_reason(conn, start=window.start, end=window.end)
    return build(window, tz_name, rides, people, firsts, rejects, top=top)


def build(
    window: Window,
    tz_name: str,
    rides: list[RideSummary],
    people: dict[int, Rider],
    firsts: dict[int, datetime],
    rejects: dict[str, int],
    *,
    top: int = 5,
) -> DayReport:
    """The report of `window.day` from the rides of it and of the 7 days before."""
    today = [r for r in rides if window.holds(r.started_at)]
    totals = _day_totals(today, window, firsts)
    previous = [
        _day_totals(
            [r for r in rides if w.holds(r.started_at)],
            w,
            firsts,
        )
        for w in (
            Window.of(window.day - timedelta(days=n), window.tz) for n in range(1, TREND_DAYS + 1)
        )
    ]
    headline = [
        Metric(
            key,
            label,
            unit,
            totals[key],
            previous[0][key],
            sum(p[key] for p in previous) / TREND_DAYS,
        )
        for key, label, unit in _HEADLINE
    ]
    riders_today = {r.user_id for r in today}
    gender = Counter(people[u].gender for u in riders_today if u in people)
    ages = Counter(
        age_bracket(age_on(people[u].date_of_birth, window.day))
        for u in riders_today
        if u in people
    )
    return DayReport(
        window=window,
        timezone=tz_name,
        rides=today,
        headline=headline,
        riders_by_gender={g: gender.get(g, 0) for g, _ in GENDERS},
        riders_by_age={b: ages.get(b, 0) for b in AGE_BRACKETS},
        hourly_heart_rate=_hourly_mean(today, window, "avg_heart_rate", "heart_rate_readings"),
        hourly_power=_hourly_mean(today, window, "avg_power", "readings_count"),
        bikes_in_use=_bikes_in_use(rides, window),
        top_riders=_top_riders(today, people, top),
        day_heart_rate=_mean(today, "avg_heart_rate", "heart_rate_readings"),
        day_power=_mean(today, "avg_power", "readings_count"),
        alerts_raised=sum(r.alert_count for r in today),
        alerts_sent=sum(r.alerts_sent for r in today),
        rejects=dict(rejects),
    )


_HEADLINE = (
    ("rides", "Rides", ""),
    ("riders", "Riders", ""),
    ("new_riders", "New riders", ""),
    ("riding_hours", "Riding time", "h"),
    ("energy_kwh", "Energy output", "kWh"),
    ("alerts", "Heart-rate alerts", ""),
)


def _day_totals(
    rides: list[RideSummary], window: Window, firsts: dict[int, datetime]
) -> dict[str, float]:
    users = {r.user_id for r in rides}
    return {
        "rides": len(rides),
        "riders": len(users),
        "new_riders": sum(1 for u in users if u in firsts and window.holds(firsts[u])),
        "riding_hours": sum(r.duration_s for r in rides) / 3600,
        "energy_kwh": sum(r.total_energy_kj or 0.0 for r in rides) / 3600,
        "alerts": sum(r.alert_count for r in rides),
    }


def _hourly_mean(
    rides: list[RideSummary], window: Window, value: str, weight: str
) -> list[float | None]:
    """Reading-weighted mean of each ride's average, rides placed in the hour they started.

    Weighting each ride's average by its readings gives the mean over all readings of those
    rides, the same whether the ride is still in daily or summarised.
    """
    sums = [0.0] * len(window.slots)
    weights = [0] * len(window.slots)
    for r in rides:
        v, w = getattr(r, value), getattr(r, weight)
        if v is None or not w:
            continue
        i = window.slot_of(r.started_at)
        sums[i] += v * w
        weights[i] += w
    return [s / w if w else None for s, w in zip(sums, weights, strict=True)]


def _mean(rides: list[RideSummary], value: str, weight: str) -> float | None:
    """Reading-weighted mean over the whole day."""
    pairs = [(getattr(r, value), getattr(r, weight)) for r in rides]
    total = sum(w for v, w in pairs if v is not None and w)
    return sum(v * w for v, w in pairs if v is not None and w) / total if total else None


def _bikes_in_use(rides: list[RideSummary], window: Window) -> list[int]:
    """Distinct bikes with a ride during each hour (a ride with no readings counts where it began)."""
    bikes: list[set[str]] = [set() for _ in window.slots]
    for r in rides:
        end = max(r.ended_at, r.started_at + timedelta(microseconds=1))
        if end <= window.start or r.started_at >= window.end:
            continue
        first = window.slot_of(max(r.started_at, window.start))
        last = window.slot_of(min(end, window.end) - timedelta(microseconds=1))
        for i in range(first, last + 1):
            bikes[i].add(r.bike_serial)
    return [len(b) for b in bikes]


def _top_riders(rides: list[RideSummary], people: dict[int, Rider], top: int) -> list[TopRider]:
    """The riders with the most riding time (then energy), named by first name and initial."""
    per: dict[int, list[RideSummary]] = defaultdict(list)
    for r in rides:
        per[r.user_id].append(r)
    ranked = sorted(
        per.items(),
        key=lambda kv: (
            -sum(r.duration_s for r in kv[1]),
            -sum(r.total_energy_kj or 0.0 for r in kv[1]),
            kv[0],
        ),
    )
    out = []
    for user_id, own in ranked[:top]:
        person = people.get(user_id)
        name = f"{person.first_name} {person.last_initial}." if person else f"Rider #{user_id}"
        out.append(
            TopRider(
                name=name,
                rides=len(own),
                riding_s=sum(r.duration_s for r in own),
                energy_kj=sum(r.total_energy_kj or 0.0 for r in own),
            )
        )
    return out
