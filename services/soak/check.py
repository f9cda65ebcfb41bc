"""The soak's verdict: what the database, the email server and the API hold against the truth
the simulator wrote (pure functions over rows already read)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.reads.rides import SUMMARY_FIELDS
from services.simulator.truth import parse_stamp


@dataclass
class Verdict:
    """Every count must be 0, except the totals."""

    readings_expected: int = 0
    readings_lost: int = 0
    readings_duplicated: int = 0
    readings_wrong: int = 0
    bad_expected: int = 0
    bad_not_rejected: int = 0
    good_rejected: int = 0
    alerts_expected: int = 0
    alerts_missed: int = 0
    alerts_duplicated: int = 0
    alerts_spurious: int = 0
    rides_expected: int = 0
    rides_unsummarised: int = 0
    summaries_wrong: int = 0
    api_checked: int = 0
    api_wrong: int = 0
    examples: list[str] = field(default_factory=list)

    def failures(self) -> dict[str, int]:
        """The counts that are not 0 but must be."""
        names = (
            "readings_lost",
            "readings_duplicated",
            "readings_wrong",
            "bad_not_rejected",
            "good_rejected",
            "alerts_missed",
            "alerts_duplicated",
            "alerts_spurious",
            "rides_unsummarised",
            "summaries_wrong",
            "api_wrong",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n)}

    def example(self, text: str) -> None:
        if len(self.examples) < 12:
            self.examples.append(text)


def ride_ids(
    truth_rides: list[dict[str, Any]], stored: Mapping[tuple[str, datetime], int]
) -> dict[int, int]:
    """Index of each truth ride -> its ride_id in the database (rides ingest never wrote are
    left out)."""
    out = {}
    for i, ride in enumerate(truth_rides):
        ride_id = stored.get((str(ride["bike"]), parse_stamp(str(ride["started"]))))
        if ride_id is not None:
            out[i] = ride_id
    return out


def check_readings(
    v: Verdict,
    truth_rides: list[dict[str, Any]],
    ids: Mapping[int, int],
    rows: Iterable[tuple[int, int, datetime, int, int | None, int, float]],
) -> None:
    """Every good reading once, with the values sent; nothing else."""
    stored: dict[tuple[int, int], list[tuple[Any, ...]]] = {}
    for ride_id, elapsed, at, resistance, hr, rpm, power in rows:
        stored.setdefault((ride_id, elapsed), []).append((at, resistance, hr, rpm, power))
    expected = set()
    for i, ride in enumerate(truth_rides):
        for n, ts, resistance, hr, rpm, power in ride["readings"]:
            v.readings_expected += 1
            known = ids.get(i)
            got = stored.get((known, n), []) if known is not None else []
            expected.add((known, n))
            if not got:
                v.readings_lost += 1
                v.example(f"lost: {ride['bike']} ride {ride['started']} second {n}")
                continue
            v.readings_duplicated += len(got) - 1
            want = (parse_stamp(ts), resistance, hr or None, rpm, float(power))
            if got[0] != want:
                v.readings_wrong += 1
                v.example(f"wrong: ride {known} second {n}: {got[0]} != {want}")
    for key, got in stored.items():
        if key not in expected:
            v.readings_wrong += len(got)
            v.example(f"never sent: ride {key[0]} second {key[1]}")


def check_rejects(
    v: Verdict, bad: list[dict[str, Any]], rejects: Iterable[tuple[bytes, bytes, str]]
) -> Counter[str]:
    """Every bad line kept with a reason, and no good line among the rejects; returns the
    reasons the rejects were stored with."""
    want = Counter((str(b["bike"]).encode(), bytes(b["raw"])) for b in bad)
    kept: Counter[tuple[bytes, bytes]] = Counter()
    reasons: Counter[str] = Counter()
    for key, raw, reason in rejects:
        if reason:
            kept[(key, raw)] += 1
            reasons[reason] += 1
    v.bad_expected = sum(want.values())
    missing = want - kept
    extra = kept - want
    v.bad_not_rejected = sum(missing.values())
    v.good_rejected = sum(extra.values())
    for key, raw in list(missing)[:3]:
        v.example(f"not rejected: {key.decode(errors='replace')} {raw[:90]!r}")
    for key, raw in list(extra)[:3]:
        v.example(f"rejected but sent intact: {key.decode(errors='replace')} {raw[:90]!r}")
    return reasons


def check_alerts(
    v: Verdict,
    truth_rides: list[dict[str, Any]],
    ids: Mapping[int, int],
    delivered: Iterable[str],
) -> None:
    """Every alert due delivered once (X-Deloton-Alert: ride_id/episode), none other."""
    due: set[tuple[int, ...]] = set()
    for i, ride in enumerate(truth_rides):
        for episode, _kind, _at in ride["alerts"]:
            due.add((ids.get(i, -1 - i), int(episode)))
    sent = Counter(tuple(int(x) for x in h.split("/")) for h in delivered)
    v.alerts_expected = len(due)
    v.alerts_missed = len(due - set(sent))
    v.alerts_duplicated = sum(n - 1 for n in sent.values() if n > 1)
    v.alerts_spurious = sum(n for k, n in sent.items() if k not in due)
    for k in sorted(due - set(sent))[:3]:
        v.example(f"alert missed: ride {k[0]} episode {k[1]}")
    for k in sorted(set(sent) - due)[:3]:
        v.example(f"alert not due: ride {k[0]} episode {k[1]}")


def expected_summary(ride: dict[str, Any]) -> dict[str, Any]:
    """A finished ride's summary recomputed from the readings the simulator sent."""
    readings = ride["readings"]
    hrs = [r[3] for r in readings if r[3]]
    power = [float(r[5]) for r in readings]
    n = len(readings)
    return {
        "readings_count": n,
        "heart_rate_readings": len(hrs),
        "avg_heart_rate": sum(hrs) / len(hrs) if hrs else None,
        "max_heart_rate": max(hrs) if hrs else None,
        "avg_power": math.fsum(power) / n if n else None,
        "max_power": max(power) if n else None,
        "total_energy_kj": math.fsum(power) / 1000 if n else None,
        "avg_rpm": sum(r[4] for r in readings) / n if n else None,
        "avg_resistance": sum(r[2] for r in readings) / n if n else None,
        "alert_count": len(ride["alerts"]),
    }


def same(got: Any, want: Any) -> bool:
    """Equal, floats to 1e-9 relative (SQL and Python sum in different orders)."""
    if isinstance(want, float) and isinstance(got, int | float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == want)


def check_summaries(
    v: Verdict,
    truth_rides: list[dict[str, Any]],
    ids: Mapping[int, int],
    stored: Mapping[int, dict[str, Any]],
) -> dict[int, dict[str, Any]]:
    """Every ride summarised, equal to the recomputation; returns ride_id -> expected."""
    out = {}
    for i, ride in enumerate(truth_rides):
        if not ride["readings"]:
            continue
        v.rides_expected += 1
        want = expected_summary(ride)
        ride_id = ids.get(i)
        got = stored.get(ride_id) if ride_id is not None else None
        if got is None or ride_id is None:
            v.rides_unsummarised += 1
            v.example(f"not summarised: {ride['bike']} ride {ride['started']}")
            continue
        out[ride_id] = want
        bad = [f for f in SUMMARY_FIELDS if not same(got[f], want[f])]
        if bad or got["started_at"] != parse_stamp(str(ride["started"])):
            v.summaries_wrong += 1
            v.example(f"summary of ride {ride_id} differs in {bad or ['started_at']}")
    return out


def check_api_ride(v: Verdict, ride_id: int, body: dict[str, Any], want: dict[str, Any]) -> None:
    """GET /ride/{id} shows the recomputed summary."""
    v.api_checked += 1
    summary = body.get("summary") or {}
    bad = [f for f in SUMMARY_FIELDS if not same(summary.get(f), want[f])]
    if body.get("ride_id") != ride_id or not body.get("summarised") or bad:
        v.api_wrong += 1
        v.example(f"API /ride/{ride_id} differs in {bad or ['ride_id/summarised']}")
