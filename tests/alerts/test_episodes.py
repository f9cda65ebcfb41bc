"""The episode state machine: when a ride raises an alert, and how many."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.alerts.episodes import BikeState, EpisodeRules, Event, apply
from services.alerts.models import Alert, Reading, RideEnded, Rider, RideStarted
from services.alerts.rules import Thresholds

START = datetime(2024, 6, 15, 9, 0, tzinfo=UTC)
RULES = EpisodeRules(episode_readings=3, recovery_readings=3, thresholds=Thresholds())
# A 30-year-old man: range 40..190.
MAN_30 = Rider(7, "male", date(1994, 1, 1))


def started(ride_id: int = 1, rider: Rider = MAN_30, at: datetime = START) -> RideStarted:
    return RideStarted(ride_id, "SN0001", at, rider)


def readings(hrs: Iterable[int | None], ride_id: int = 1, first_s: int = 1) -> list[Reading]:
    return [
        Reading(ride_id, "SN0001", 7, START + timedelta(seconds=s), s, hr)
        for s, hr in enumerate(hrs, start=first_s)
    ]


def run(
    events: Iterable[Event], state: BikeState | None = None, rules: EpisodeRules = RULES
) -> tuple[BikeState | None, list[Alert]]:
    """Feed events through the machine; return the final state and every alert raised."""
    alerts: list[Alert] = []
    for event in events:
        out = apply(state, event, rules)
        state = out.state
        if out.alert is not None:
            alerts.append(out.alert)
    return state, alerts


def test_three_high_readings_raise_one_alert() -> None:
    _, alerts = run([started(), *readings([120, 191, 195, 200])])
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.kind, a.episode, a.heart_rates) == ("high", 1, [191, 195, 200])
    assert (a.limits.low, a.limits.high) == (40, 190)
    assert a.detected_at == START + timedelta(seconds=4)
    assert a.rider == MAN_30 and a.user_id == 7


def test_two_high_then_normal_raise_nothing() -> None:
    _, alerts = run([started(), *readings([195, 196, 120, 195, 196, 120])])
    assert alerts == []


def test_zeros_and_nulls_neither_count_nor_reset() -> None:
    _, alerts = run([started(), *readings([195, None, 0, 196, None, 197])])
    assert [a.heart_rates for a in alerts] == [[195, 196, 197]]
    _, alerts = run([started(), *readings([195, 196, None, None, None, None])])
    assert alerts == []


def test_low_heart_rate() -> None:
    _, alerts = run([started(), *readings([39, 38, 35])])
    assert [(a.kind, a.heart_rates) for a in alerts] == [("low", [39, 38, 35])]


def test_limit_itself_is_in_range() -> None:
    _, alerts = run([started(), *readings([190, 190, 190, 40, 40, 40])])
    assert alerts == []


def test_mixed_high_and_low_count_together_majority_kind() -> None:
    _, alerts = run([started(), *readings([30, 200, 30])])
    assert [a.kind for a in alerts] == ["low"]


def test_one_alert_per_episode_then_recovery_and_a_second_episode() -> None:
    hrs = [200] * 10 + [120, 120, 200] + [200] * 5 + [120] * 3 + [200] * 3
    _, alerts = run([started(), *readings(hrs)])
    # 120, 120 is not a recovery (3 needed); the 3 x 120 later is, so the last run alerts.
    assert [a.episode for a in alerts] == [1, 2]
    assert alerts[1].heart_rates == [200, 200, 200]


def test_recovery_ignores_nulls_and_is_reset_by_out_of_range() -> None:
    hrs = [200, 200, 200, 120, None, 120, 200, 120, 120, 200, 200, 200]
    _, alerts = run([started(), *readings(hrs)])
    assert len(alerts) == 1


def test_replayed_readings_are_duplicates() -> None:
    first = readings([200, 200, 200])
    state, alerts = run([started(), *first])
    state, again = run([started(), *first, *first], state)
    assert len(alerts) == 1 and again == []
    assert state is not None and state.last_elapsed_s == 3


def test_restart_from_a_saved_state_mid_episode_does_not_alert_again() -> None:
    evs: list[Event] = [started(), *readings([200, 200, 200, 200, 200])]
    state, alerts = run(evs[:3])
    assert alerts == []
    state, alerts = run(evs, state)  # everything redelivered after the restart
    assert len(alerts) == 1


def test_readings_without_a_known_ride_are_ignored() -> None:
    _, alerts = run(readings([200, 200, 200]))
    assert alerts == []
    evs: list[Event] = [started(ride_id=2), *readings([200, 200, 200], ride_id=1)]
    _, alerts = run(evs)
    assert alerts == []


def test_ride_end_stops_alerts_and_a_new_ride_starts_afresh() -> None:
    evs: list[Event] = [started(), *readings([200, 200]), RideEnded(1, "SN0001", START)]
    evs += readings([200], first_s=3)
    later = START + timedelta(minutes=30)
    evs += [started(2, at=later), *readings([200, 200, 200], ride_id=2)]
    _, alerts = run(evs)
    assert [(a.ride_id, a.episode) for a in alerts] == [(2, 1)]


def test_replayed_older_ride_start_is_ignored() -> None:
    later = START + timedelta(minutes=30)
    evs: list[Event] = [started(2, at=later), started(1, at=START)]
    evs += readings([200, 200, 200], ride_id=2)
    _, alerts = run(evs)
    assert len(alerts) == 1


def test_age_is_taken_on_the_reading_day() -> None:
    # Turns 40 at midnight during the ride: Fox 181 before, Tanaka 180 after.
    rider = Rider(7, "male", date(1984, 6, 16))
    night = datetime(2024, 6, 15, 23, 59, 58, tzinfo=UTC)
    evs: list[Event] = [started(rider=rider, at=night)]
    evs += [Reading(1, "SN0001", 7, night + timedelta(seconds=s), s, 181) for s in range(1, 6)]
    _, alerts = run(evs)
    assert [a.limits.high for a in alerts] == [180]
    assert [a.heart_rates for a in alerts] == [[181, 181, 181]]


def test_women_and_others_use_their_own_limits() -> None:
    for gender, hr, kind in [("female", 44, "low"), ("other", 44, "low"), ("male", 44, None)]:
        rider = Rider(7, gender, date(1994, 1, 1))
        _, alerts = run([started(rider=rider), *readings([hr] * 3)])
        assert [a.kind for a in alerts] == ([kind] if kind else [])


def test_episode_length_comes_from_the_rules() -> None:
    rules = EpisodeRules(episode_readings=5, recovery_readings=1)
    _, alerts = run([started(), *readings([200] * 4 + [120] + [200] * 5)], rules=rules)
    assert len(alerts) == 1


@given(st.lists(st.one_of(st.none(), st.integers(0, 250)), max_size=200))
def test_never_more_alerts_than_runs_allow(hrs: list[int | None]) -> None:
    _, alerts = run([started(), *readings(hrs)])
    assert [a.episode for a in alerts] == list(range(1, len(alerts) + 1))
    assert all(len(a.readings) == 3 for a in alerts)
    contact = [h for h in hrs if h]
    assert len(alerts) <= len(contact) // 3
