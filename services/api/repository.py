"""The API's own writes and key lookups: keys, the audit trail, deleting a ride."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from services.api.auth import ApiKey
from services.common.pool import AsyncConnection, Connection


@dataclass(frozen=True)
class KeyRecord:
    """A key as `api-key list` shows it."""

    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


async def find_key_async(conn: AsyncConnection, *, token_hash: bytes) -> ApiKey | None:
    """The active key with this token hash, or None (unknown or revoked)."""
    cur = await conn.execute(
        """SELECT key_id, name, prefix, scopes FROM api.keys
           WHERE token_hash = %s AND revoked_at IS NULL""",
        (token_hash,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return ApiKey(row["key_id"], row["name"], row["prefix"], frozenset(row["scopes"]))


def create_key(
    conn: Connection, *, name: str, prefix: str, token_hash: bytes, scopes: list[str]
) -> bool:
    """Store a new key; False if an active or revoked key already has this name."""
    row = conn.execute(
        """INSERT INTO api.keys (name, prefix, token_hash, scopes) VALUES (%s, %s, %s, %s)
           ON CONFLICT (name) DO NOTHING RETURNING key_id""",
        (name, prefix, token_hash, scopes),
    ).fetchone()
    return row is not None


def revoke_key(conn: Connection, *, name: str) -> bool:
    """Revoke the active key of that name; False if there is none."""
    row = conn.execute(
        """UPDATE api.keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL
           RETURNING key_id""",
        (name,),
    ).fetchone()
    return row is not None


def list_keys(conn: Connection) -> list[KeyRecord]:
    """Every key, oldest first, without hashes."""
    rows = conn.execute(
        "SELECT name, prefix, scopes, created_at, revoked_at FROM api.keys ORDER BY key_id"
    ).fetchall()
    return [KeyRecord(**row) for row in rows]


def audit(conn: Connection, *, key: ApiKey, action: str, route: str, resource_id: str) -> None:
    """One row of the audit trail (a DELETE, or a read that returned personal data)."""
    conn.execute(
        """INSERT INTO api.audit_log (key_id, key_name, action, route, resource_id)
           VALUES (%s, %s, %s, %s, %s)""",
        (key.key_id, key.name, action, route, resource_id),
    )


@dataclass(frozen=True)
class Deleted:
    """What a delete removed."""

    readings: int
    alerts: int
    summary: bool
    daily_ride: bool


def tombstone_ride(conn: Connection, *, ride_id: int) -> bool:
    """Write the tombstone; False if the ride was deleted already (by a concurrent call too)."""
    row = conn.execute(
        """INSERT INTO historical.deleted_rides (ride_id) VALUES (%s)
           ON CONFLICT (ride_id) DO NOTHING RETURNING ride_id""",
        (ride_id,),
    ).fetchone()
    return row is not None


def delete_ride_rows(conn: Connection, *, ride_id: int, started_at: datetime) -> Deleted:
    """Remove a tombstoned ride's summary, daily row, readings and handled alerts.

    Alerts still pending stay: the rider's email goes out, and compress removes the alert
    afterwards (it removes handled alerts of tombstoned rides).
    """
    row = conn.execute(
        """WITH s AS (DELETE FROM historical.rides WHERE ride_id = %(id)s RETURNING 1),
                r AS (DELETE FROM daily.readings
                      WHERE ride_id = %(id)s AND recorded_at >= %(from)s RETURNING 1),
                a AS (DELETE FROM daily.alerts
                      WHERE ride_id = %(id)s AND status <> 'pending' RETURNING 1),
                d AS (DELETE FROM daily.rides WHERE ride_id = %(id)s RETURNING 1)
           SELECT (SELECT count(*) FROM s) AS s, (SELECT count(*) FROM r) AS r,
                  (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM d) AS d""",
        {"id": ride_id, "from": started_at},
    ).fetchone()
    assert row is not None
    return Deleted(
        readings=row["r"], alerts=row["a"], summary=row["s"] > 0, daily_ride=row["d"] > 0
    )


def applied_migration(conn: Connection) -> int | None:
    """The highest migration version applied, None if none."""
    row = conn.execute("SELECT max(version) AS v FROM public.schema_migrations").fetchone()
    return row["v"] if row else None


def lock_setting(conn: Connection, *, name: str) -> None:
    """Serialise changes of one setting until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('ops.settings:' || %s))", (name,))


def set_setting(conn: Connection, *, key: ApiKey, name: str, value: Any) -> Any:
    """Store a run-time setting and audit the change; returns the value stored before (None:
    none was, the service's environment value was in force). Serialised per setting, so two
    concurrent changes are audited in the order they took effect (take `lock_setting` first)."""
    row = conn.execute("SELECT value FROM ops.settings WHERE name = %s", (name,)).fetchone()
    old = row["value"] if row else None
    conn.execute(
        """INSERT INTO ops.settings (name, value, updated_at, updated_by)
           VALUES (%s, %s, now(), %s)
           ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value,
               updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by""",
        (name, Jsonb(value), key.name),
    )
    conn.execute(
        """INSERT INTO ops.settings_audit (key_id, key_name, name, old_value, new_value)
           VALUES (%s, %s, %s, %s, %s)""",
        (key.key_id, key.name, name, Jsonb(old) if row else None, Jsonb(value)),
    )
    return old
