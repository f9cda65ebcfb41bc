"""/settings: run-time settings read and changed by admin keys, every change audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from services.api import repository, schemas
from services.api.deps import AdminKey, get_pool, reading
from services.api.errors import ApiError, documented
from services.api.routes.common import threaded
from services.common import pool, runtime, runtime_store
from services.common.config import Settings
from services.common.reads import settings as reads

router = APIRouter(tags=["settings"])
SettingName = Annotated[
    str, Path(max_length=64, pattern=r"^[a-z0-9_]+$", examples=["alert_episode_readings"])
]


def _out(name: str, base: Settings, effective: dict[str, object],
         stored: dict[str, reads.StoredSetting]) -> schemas.SettingOut:  # fmt: skip
    spec = runtime.SPECS[name]
    default = getattr(base, name)
    row = stored.get(name)
    return schemas.SettingOut(
        name=name,
        value=effective[name],
        default=list(default) if isinstance(default, tuple) else default,
        stored=row is not None,
        services=list(spec.services),
        description=spec.description,
        updated_at=row.updated_at if row else None,
        updated_by=row.updated_by if row else None,
    )


@router.get(
    "/settings",
    response_model=schemas.RuntimeSettingsOut,
    responses=documented(400, 401, 403, 414, 429, 503),
    summary="Run-time settings (admin)",
)
@threaded
def get_settings(request: Request, _key: AdminKey) -> schemas.RuntimeSettingsOut:
    """Every setting that changes without a restart: value in force, the environment's
    default, and who stored it when."""
    base: Settings = request.app.state.settings
    with reading(request) as conn:
        stored = reads.stored_settings(conn)
    effective = runtime.effective(base, {n: s.value for n, s in stored.items()})
    return schemas.RuntimeSettingsOut(
        settings=[_out(name, base, effective, stored) for name in runtime.SPECS],
        refresh_s=base.runtime_settings_refresh_s,
    )


@router.put(
    "/settings/{name}",
    response_model=schemas.SettingOut,
    responses=documented(400, 401, 403, 404, 414, 422, 429, 503),
    summary="Change a run-time setting (admin, audited)",
)
@threaded
def put_setting(
    request: Request,
    name: SettingName,
    key: AdminKey,
    change: Annotated[schemas.SettingChange, Body()],
) -> schemas.SettingOut:
    """Validate and store the value; running services follow it within `refresh_s` seconds.
    The change is audited with the key, the time, the old and the new value."""
    if name not in runtime.SPECS:
        raise ApiError(404, "not_found", f"no run-time setting {name}")
    try:
        value = runtime.validate(name, change.value)
    except runtime.InvalidSetting as exc:
        raise ApiError(422, "invalid_value", str(exc)) from None
    base: Settings = request.app.state.settings
    with pool.read_write(get_pool(request)) as conn:
        if not runtime.cross_check(
            {**runtime.effective(base, runtime_store.stored(conn)), name: value}
        ):
            raise ApiError(
                422, "invalid_value", "quality_recover_score must be at least quality_min_score"
            )
        repository.set_setting(conn, key=key, name=name, value=value)
        stored = reads.stored_settings(conn)
    effective = runtime.effective(base, {n: s.value for n, s in stored.items()})
    return _out(name, base, effective, stored)


@router.get(
    "/settings/audit",
    response_model=schemas.SettingsAudit,
    responses=documented(400, 401, 403, 414, 422, 429, 503),
    summary="Changes of run-time settings, newest first (admin)",
)
@threaded
def get_settings_audit(
    request: Request,
    _key: AdminKey,
    name: Annotated[str | None, Query(max_length=64, description="one setting only")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.SettingsAudit:
    """Who changed what, when, from which value to which."""
    with reading(request) as conn:
        changes = reads.setting_changes(conn, name=name, limit=limit)
    return schemas.SettingsAudit(
        changes=[schemas.SettingAudit.model_validate(vars(c)) for c in changes]
    )
