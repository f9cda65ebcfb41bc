"""Run-time settings (pure): validation, laying stored values over the environment, and the
holder keeping the last good values when the database is away."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import runtime
from services.common.config import Settings

BASE = Settings(_env_file=None)  # type: ignore[call-arg]


def test_stored_values_override_the_environment_and_bad_ones_are_skipped() -> None:
    stored = {
        "alert_episode_readings": 5,
        "alert_min_hr_male": [41, 48, 53],
        "retention_hours": -3,  # refused: the environment's value stays
        "database_url": "postgresql://elsewhere",  # not a run-time setting: ignored
    }
    current = runtime.apply(BASE, stored)
    assert current.alert_episode_readings == 5
    assert current.alert_min_hr_male == (41, 48, 53)
    assert current.retention_hours == BASE.retention_hours
    assert current.database_url == BASE.database_url
    assert runtime.apply(BASE, {}) is BASE


def test_disagreeing_quality_scores_fall_back_to_the_environment() -> None:
    current = runtime.apply(BASE, {"quality_min_score": 0.9, "quality_recover_score": 0.8})
    assert (current.quality_min_score, current.quality_recover_score) == (
        BASE.quality_min_score, BASE.quality_recover_score,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(),
                       st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=4)))  # fmt: skip
def test_a_value_is_accepted_only_if_the_setting_itself_would_accept_it(value: Any) -> None:
    try:
        checked = runtime.validate("alert_episode_readings", value)
    except runtime.InvalidSetting:
        return
    assert isinstance(checked, int) and not isinstance(value, bool) and 1 <= checked <= 600
    assert (
        runtime.apply(BASE, {"alert_episode_readings": checked}).alert_episode_readings == checked
    )


def test_the_holder_follows_changes_and_keeps_the_last_values_while_the_database_is_away() -> None:
    answers: list[Any] = [{}, {"alert_episode_readings": 4}, ConnectionError("down"), {}]
    seen: list[int] = []

    def load() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    holder = runtime.RuntimeSettings(
        BASE, load, every_s=3600, on_change=lambda s: seen.append(s.alert_episode_readings)
    ).start()
    try:
        assert holder.current() is BASE  # nothing stored: the environment's settings
        assert holder.refresh() and holder.current().alert_episode_readings == 4
        assert not holder.refresh()  # the database is away: the last values stay
        assert holder.current().alert_episode_readings == 4
        assert holder.refresh() and holder.current().alert_episode_readings == 3  # unset again
        assert seen == [4, 3]
    finally:
        holder.stop()


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(runtime.InvalidSetting, match="cannot be changed at run time"):
        runtime.validate("database_url", "postgresql://x")
