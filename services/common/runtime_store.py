"""SQL of the run-time settings (ops.settings): what the services read every few seconds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

from services.common import db
from services.common.config import Settings
from services.common.runtime import RuntimeSettings, apply


def stored(conn: Any) -> dict[str, Any]:
    """Every stored value by name (psycopg2 or psycopg 3 connection; tuple or dict rows);
    none before the migration that creates the table."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('ops.settings') IS NOT NULL AS present")
        row = cur.fetchone()
        if not (row["present"] if isinstance(row, dict) else row[0]):
            return {}
        cur.execute("SELECT name, value FROM ops.settings")
        rows = cur.fetchall()
    return {
        (r["name"] if isinstance(r, dict) else r[0]): (r["value"] if isinstance(r, dict) else r[1])
        for r in rows
    }


def loader(settings: Settings, *, application_name: str) -> Callable[[], dict[str, Any]]:
    """A loader for RuntimeSettings that keeps one connection and reconnects after an error."""
    conn: list[psycopg2.extensions.connection] = []

    def load() -> dict[str, Any]:
        if not conn or conn[0].closed:
            conn[:] = [db.connect(settings.require_database(), application_name=application_name)]
        try:
            with db.transaction(conn[0]):
                return stored(conn[0])
        except psycopg2.Error:
            conn[0].close()
            raise

    return load


def following(settings: Settings, *, application_name: str, **kwargs: Any) -> RuntimeSettings:
    """A started RuntimeSettings over `settings` for a long-running service."""
    return RuntimeSettings(
        settings, loader(settings, application_name=application_name), **kwargs
    ).start()


def with_stored(settings: Settings, *, application_name: str) -> Settings:
    """`settings` with the stored values laid over it, read once (a scheduled job's run)."""
    conn = db.connect(settings.require_database(), application_name=application_name)
    try:
        with db.transaction(conn):
            cur_stored = stored(conn)
    finally:
        conn.close()
    return apply(settings, cur_stored)
