"""/settings: run-time settings read and changed by admin keys, every change audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel

from services.api import repository, schemas
from services.api.deps import AdminKey, ApiRoute, get_pool, reading
from services.api.errors import ApiError, documented
from services.api.routes.common import PLAIN_TEXT, threaded
from services.common import pool, runtime, runtime_store
from services.common.config import Settings
from services.common.reads import settings as reads

router = APIRouter(tags=["settings"], route_class=ApiRoute)


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


@router.patch(
    "/settings",
    response_model=schemas.RuntimeSettingsOut,
    responses={
        **documented(400, 401, 403, 414, 422, 429, 503),
        409: {"model": schemas.ErrorBody, "description": "settings that would disagree"},
    },
    summary="Change run-time settings (admin, audited)",
)
@threaded
def patch_settings(
    request: Request,
    key: AdminKey,
    change: Annotated[runtime.RuntimeChange | None, Body()] = None,  # type: ignore[valid-type]
) -> schemas.RuntimeSettingsOut:
    """Store the settings named in the body, each validated like its environment variable;
    running services follow them within `refresh_s` seconds. Each change is audited with the
    key, the time, the old and the new value. 409 when the result would be inconsistent
    (a recovery score below the incident threshold). Without a body nothing changes."""
    given: BaseModel | None = change
    dumped: dict[str, Any] = given.model_dump(exclude_unset=True) if given is not None else {}
    values = runtime.parse_change(dumped)
    base: Settings = request.app.state.settings
    with pool.read_write(get_pool(request)) as conn:
        for name in sorted(values):  # one lock order, so two changes never deadlock
            repository.lock_setting(conn, name=name)
        current = runtime.effective(base, runtime_store.stored(conn))
        if not runtime.cross_check({**current, **values}):
            raise ApiError(
                409, "conflict", "quality_recover_score must be at least quality_min_score"
            )
        for name, value in sorted(values.items()):
            repository.set_setting(conn, key=key, name=name, value=value)
        stored = reads.stored_settings(conn)
    effective = runtime.effective(base, {n: s.value for n, s in stored.items()})
    return schemas.RuntimeSettingsOut(
        settings=[_out(name, base, effective, stored) for name in runtime.SPECS],
        refresh_s=base.runtime_settings_refresh_s,
    )


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
    name: Annotated[
        str | None, Query(max_length=64, pattern=PLAIN_TEXT, description="one setting only")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.SettingsAudit:
    """Who changed what, when, from which value to which."""
    with reading(request) as conn:
        changes = reads.setting_changes(conn, name=name, limit=limit)
    return schemas.SettingsAudit(
        changes=[schemas.SettingAudit.model_validate(vars(c)) for c in changes]
    )
