"""Reads of the run-time settings: stored values with who set them, and the change history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.common.pool import Connection


@dataclass(frozen=True)
class StoredSetting:
    """A value set through the API, and by which key when."""

    name: str
    value: Any
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class SettingChange:
    """One audited change."""

    audit_id: int
    at: datetime
    key_name: str
    name: str
    old_value: Any
    new_value: Any


def stored_settings(conn: Connection) -> dict[str, StoredSetting]:
    """Every stored value by name."""
    rows = conn.execute(
        "SELECT name, value, updated_at, updated_by FROM ops.settings ORDER BY name"
    ).fetchall()
    return {r["name"]: StoredSetting(**r) for r in rows}


def setting_changes(
    conn: Connection, *, name: str | None = None, limit: int = 100
) -> list[SettingChange]:
    """The latest changes, newest first (of one setting when `name` is given)."""
    rows = conn.execute(
        """SELECT audit_id, at, key_name, name, old_value, new_value FROM ops.settings_audit
           WHERE %(name)s::text IS NULL OR name = %(name)s
           ORDER BY audit_id DESC LIMIT %(limit)s""",
        {"name": name, "limit": limit},
    ).fetchall()
    return [SettingChange(**r) for r in rows]
