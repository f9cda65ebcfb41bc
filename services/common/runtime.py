"""Settings changed at run time: which ones, how each is validated, and a holder that keeps
running services up to date with the database (ops.settings) every few seconds.

A setting without a row keeps its environment value (the bootstrap): the holder's `current()`
is the Settings the entrypoint made, with the stored values laid over it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from services.common import db
from services.common.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spec:
    """One setting that may change at run time: its bounds beyond the Settings field's own,
    which services follow it, and what it means."""

    name: str
    services: tuple[str, ...]
    description: str
    maximum: float | None = None


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("alert_episode_readings", ("alerts",), "out-of-range readings that start an episode", 600),
        Spec("alert_recovery_readings", ("alerts",), "in-range readings that end an episode", 600),
        Spec("alert_max_hr_young_male_base", ("alerts",), "men under the split age: base - age", 300),
        Spec("alert_max_hr_older_male_base", ("alerts",), "men from the split age: base - factor x age", 300),
        Spec("alert_max_hr_older_male_factor", ("alerts",), "men from the split age: the factor", 2),
        Spec("alert_max_hr_other_base", ("alerts",), "women and others: base - factor x age", 300),
        Spec("alert_max_hr_other_factor", ("alerts",), "women and others: the factor", 2),
        Spec("alert_male_split_age", ("alerts",), "age where the men's formula changes", 120),
        Spec("alert_min_hr_male", ("alerts",), "men's minimum heart rate, by age band", 250),
        Spec("alert_min_hr_female", ("alerts",), "women's minimum heart rate, by age band", 250),
        Spec("alert_stale_after_s", ("alerts",), "an alert not emailed this long after is expired", 86_400),
        Spec("ride_silence_s", ("ingest",), "a ride closes after its bike was silent this long", 86_400),
        Spec("retention_hours", ("compress",), "full-resolution readings are kept this long", 24 * 365),
        Spec("rejects_retention_days", ("compress",), "dead letters are kept this long", 3650),
        Spec("quality_min_score", ("quality",), "a bike scoring below this opens an incident", 1),
        Spec("quality_recover_score", ("quality",), "an incident clears at this score", 1),
        Spec("quality_window_s", ("quality",), "seconds of readings each quality run judges", 86_400),
    )
}  # fmt: skip


class InvalidSetting(ValueError):
    """A name that cannot change at run time, or a value its setting refuses."""


def _field(name: str) -> tuple[Any, Any]:
    """The run-time field of a setting: its type and bounds (the Settings field's own and the
    spec's maximum, for tuples each item's), optional so a change names only what it changes."""
    field = Settings.model_fields[name]
    spec = SPECS[name]
    meta: list[Any] = list(field.metadata)
    annotation: Any = field.annotation
    if annotation == tuple[int, int, int]:
        item = Annotated[int, Field(ge=0, le=spec.maximum)]
        annotation = tuple[item, item, item]
    elif spec.maximum is not None:
        meta.append(Field(le=spec.maximum))
    typed = Annotated[tuple([annotation, *meta])] if meta else annotation
    return typed | None, Field(default=None, description=spec.description)


class _Numbers(BaseModel):
    """Settings are numbers: JSON true/false is refused, not read as 1/0."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data: Any) -> Any:
        values = data.values() if isinstance(data, dict) else ()
        for value in values:
            items = value if isinstance(value, list | tuple) else (value,)
            if any(isinstance(item, bool) for item in items):
                raise ValueError("true/false is not a number")
        return data


RuntimeChange: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "RuntimeChange",
    __base__=_Numbers,
    __doc__="Run-time settings to change; each one named is validated like its setting.",
    **{name: _field(name) for name in SPECS},
)


def parse_change(values: Mapping[str, Any]) -> dict[str, Any]:
    """The named settings validated (JSON-able), or InvalidSetting saying what is wrong."""
    try:
        change = RuntimeChange.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidSetting(f"{where}: {first['msg']}") from None
    return {
        name: list(v) if isinstance(v, tuple) else v
        for name, v in change.model_dump(exclude_unset=True).items()
        if v is not None
    }


def validate(name: str, value: Any) -> Any:
    """One setting's value as stored (JSON-able), or InvalidSetting saying why."""
    if name not in SPECS:
        raise InvalidSetting(f"{name!r} cannot be changed at run time")
    if value is None:
        raise InvalidSetting(f"{name}: a value is needed")
    return parse_change({name: value})[name]


def apply(base: Settings, stored: Mapping[str, Any]) -> Settings:
    """`base` with every stored value that still validates laid over it (a value written by
    an older release that no longer validates is skipped with a warning, not fatal)."""
    update: dict[str, Any] = {}
    for name, value in stored.items():
        if name not in SPECS:
            continue
        try:
            checked = validate(name, value)
        except InvalidSetting as exc:
            log.warning("stored setting ignored", extra={"setting": name, "error": str(exc)})
            continue
        update[name] = tuple(checked) if isinstance(checked, list) else checked
    if not cross_check({**base.model_dump(include=set(SPECS)), **update}):
        log.warning("stored quality scores ignored: recovery below the incident threshold")
        update.pop("quality_recover_score", None)
        update.pop("quality_min_score", None)
    return base.model_copy(update=update) if update else base


def cross_check(values: Mapping[str, Any]) -> bool:
    """Settings that must agree with each other do."""
    return bool(values["quality_recover_score"] >= values["quality_min_score"])


def effective(base: Settings, stored: Mapping[str, Any]) -> dict[str, Any]:
    """Every run-time setting's value now (JSON-able), and whether it is stored or the default."""
    current = apply(base, stored)
    out: dict[str, Any] = {}
    for name in SPECS:
        value = getattr(current, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


class RuntimeSettings:
    """The Settings a running service follows: refreshed from the database every `every_s`
    seconds on a daemon thread; the last good values stay if the database is away."""

    def __init__(
        self,
        base: Settings,
        load: Callable[[], Mapping[str, Any]],
        *,
        every_s: float | None = None,
        on_change: Callable[[Settings], None] | None = None,
    ) -> None:
        self.base = base
        self._load = load
        self.every_s = base.runtime_settings_refresh_s if every_s is None else every_s
        self._on_change = on_change
        self._current = base
        self._stored: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> Settings:
        """The settings to use now (one attribute read: safe from any thread)."""
        return self._current

    def refresh(self) -> bool:
        """Read the stored values once; True when they changed."""
        try:
            stored = dict(self._load())
        except Exception as exc:  # the database may be away: keep what we had
            log.warning("run-time settings not refreshed", extra={"error": db.error_line(exc)})
            return False
        if stored == self._stored:
            return False
        self._stored = stored
        self._current = apply(self.base, stored)
        log.info("run-time settings changed", extra={"settings": sorted(stored)})
        if self._on_change is not None:
            self._on_change(self._current)
        return True

    def start(self) -> RuntimeSettings:
        """Refresh now, then every `every_s` seconds on a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="runtime-settings", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.refresh()

    def stop(self) -> None:
        """Stop the refresh thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
