"""What the database holds after the hostile feed, against what the feed says it must."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import psycopg2

from bench.hostile.feed import Feed


@dataclass(frozen=True)
class Row:
    """One line of the summary table."""

    check: str
    expected: object
    actual: object
    ok: bool
    note: str = ""


def row(check: str, expected: object, actual: object, note: str = "") -> Row:
    return Row(check, expected, actual, expected == actual, note)


def stored_offsets(dsn: str, group: str, topic: str) -> dict[int, int]:
    """Each partition's next offset as ingest stored it with its rows."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT kafka_partition, next_offset FROM daily.ingest_offsets"
                " WHERE consumer_group = %s AND topic = %s",
                (group, topic),
            )
            return dict(cur.fetchall())
    finally:
        conn.close()


def ingest_rows(
    feed: Feed, positions: dict[tuple[int, int], int], dsn: str, topic: str
) -> list[Row]:
    """Every line stored exactly as sent or rejected for its reason; counts that add up."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT kafka_partition, kafka_offset, reason, detail IS NOT NULL AND detail <> ''"
                " FROM daily.rejects WHERE topic = %s",
                (topic,),
            )
            rejects = {(p, o): (reason, has_detail) for p, o, reason, has_detail in cur.fetchall()}
            cur.execute(
                "SELECT r.bike_serial, to_char(r.started_at AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI:SS.US'), x.elapsed_s, to_char(x.recorded_at AT TIME ZONE"
                " 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), x.resistance, x.heart_rate, x.rpm, x.power"
                " FROM daily.readings x JOIN daily.rides r USING (ride_id)"
            )
            readings = cur.fetchall()
            cur.execute(
                "SELECT bike_serial, to_char(started_at AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI:SS.US'), user_id, announced_serial FROM daily.rides"
            )
            rides = {(s, t): (u, a) for s, t, u, a in cur.fetchall()}
            cur.execute(
                "SELECT user_id, title, first_name, last_name, gender, address_line, city,"
                " postcode, date_of_birth, email_address, email_invalid, height_cm, weight_kg"
                " FROM daily.riders"
            )
            riders = {r[0]: tuple(r) for r in cur.fetchall()}
    finally:
        conn.close()

    expected_rejects = {}
    kinds_ok: Counter[str] = Counter()
    kinds_all: Counter[str] = Counter()
    for pos, index in positions.items():
        line = feed.lines[index]
        kinds_all[line.kind] += 1
        if line.outcome == "reject":
            expected_rejects[pos] = line.reason
            got = rejects.get(pos)
            kinds_ok[line.kind] += got is not None and got[0] == line.reason and got[1]
        else:
            kinds_ok[line.kind] += pos not in rejects
    by_reason = Counter(expected_rejects.values())
    got_reason = Counter(reason for reason, _ in rejects.values())
    wrong = sum(
        1 for pos, reason in expected_rejects.items() if rejects.get(pos, ("",))[0] != reason
    )
    stored_rejected = sum(1 for pos in rejects if pos not in expected_rejects)
    sent = len(feed.lines)
    structural = sum(1 for ln in feed.lines if ln.outcome == "structure")
    expected_riders = {u: (u, *tuple(vars(f).values())[1:]) for u, f in feed.riders.items()}
    rows = [
        row("lines delivered to the broker", sent, len(positions)),
        row("lines rejected (daily.rejects)", len(expected_rejects), len(rejects)),
        *[
            row(f"  rejected as {reason}", n, got_reason.get(reason, 0))
            for reason, n in sorted(by_reason.items())
        ],
        row("  rejects with another reason than expected", 0, wrong),
        row("  good lines rejected", 0, stored_rejected),
        row("  rejects without a detail", 0, sum(1 for _, d in rejects.values() if not d)),
        row("readings stored (2 lines each)", len(feed.readings), len(readings)),
        row("  readings with exactly the values sent", len(feed.readings), len(feed.readings & set(readings))),
        row("rides stored (SYSTEM lines)", len(feed.rides), len(rides)),
        row("  rides exactly as sent (bike, start, rider, serial)", feed.rides, rides, "exact"),
        row("riders stored exactly (names, addresses, emails as sent)", expected_riders, riders, "exact"),
        row(
            "sent = rejected + 2 x readings + SYSTEM + banners",
            sent,
            len(rejects) + 2 * len(readings) + len(rides) + structural,
        ),
    ]  # fmt: skip
    for kind in sorted(kinds_all):
        rows.append(row(f"  category: {kind}", kinds_all[kind], kinds_ok[kind], "as expected"))
    return rows


def exact_summary(r: Row) -> Row:
    """A row comparing two collections, shown as sizes and how many differ."""
    if r.note != "exact" or not isinstance(r.expected, dict) or not isinstance(r.actual, dict):
        return r
    differ = sum(
        1 for k in r.expected.keys() | r.actual.keys() if r.expected.get(k) != r.actual.get(k)
    )
    return Row(r.check, len(r.expected), f"{len(r.actual)} ({differ} differ)", r.ok)
