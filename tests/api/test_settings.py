"""Run-time settings through the API: admin only, validated, every change audited."""

from __future__ import annotations

import pytest

from tests.api.conftest import LiveApi

pytestmark = pytest.mark.postgres


def test_settings_are_admin_only_validated_and_every_change_is_audited(live_api: LiveApi) -> None:
    with live_api.client("read") as reader:
        assert reader.get("/settings").status_code == 403
        assert reader.patch("/settings", json={"alert_episode_readings": 5}).status_code == 403
    with live_api.client("read,admin") as admin:
        listed = {s["name"]: s for s in admin.get("/settings").json()["settings"]}
        episode = listed["alert_episode_readings"]
        assert (episode["value"], episode["default"], episode["stored"]) == (3, 3, False)
        assert listed["alert_min_hr_male"]["value"] == [40, 47, 52]

        changed = admin.patch("/settings", json={"alert_episode_readings": 5})
        assert changed.status_code == 200, changed.text
        after = {s["name"]: s for s in changed.json()["settings"]}["alert_episode_readings"]
        assert (after["value"], after["default"], after["stored"]) == (5, 3, True)
        assert after["updated_by"] == "key-read,admin"
        unchanged = admin.patch("/settings")  # no body: nothing changes, nothing audited
        assert unchanged.status_code == 200 and unchanged.json() == changed.json()
        both = {"alert_episode_readings": 6, "alert_min_hr_female": [44, 50, 55]}
        assert admin.patch("/settings", json=both).status_code == 200

        for bad in (
            {"alert_episode_readings": 0},
            {"alert_episode_readings": "many"},
            {"alert_episode_readings": True},
            {"alert_episode_readings": 601},
            {"alert_min_hr_male": [40, 47]},
            {"retention_hours": -1},
            {"database_url": "postgresql://elsewhere"},  # not a run-time setting
        ):
            refused = admin.patch("/settings", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
        conflict = admin.patch("/settings", json={"quality_recover_score": 0.5})
        assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"

        changes = admin.get("/settings/audit").json()["changes"]
        episode_only = admin.get("/settings/audit", params={"name": "alert_episode_readings"})
    assert [(c["name"], c["old_value"], c["new_value"]) for c in changes] == [
        ("alert_min_hr_female", None, [44, 50, 55]),
        ("alert_episode_readings", 5, 6),
        ("alert_episode_readings", None, 5),
    ]
    assert all(c["key_name"] == "key-read,admin" and c["at"] for c in changes)
    assert [c["new_value"] for c in episode_only.json()["changes"]] == [6, 5]


def test_a_setting_name_with_control_characters_is_refused_not_a_server_error(
    live_api: LiveApi,
) -> None:
    """A NUL reached PostgreSQL, which refuses it in a string: a 500 (found by schemathesis)."""
    with live_api.client("read,admin") as admin:
        for name in ("\x00", "alert\x00episode", "tab\there"):
            refused = admin.get("/settings/audit", params={"name": name})
            assert refused.status_code == 422, (name, refused.text)
            assert refused.headers["content-type"].startswith("application/json")
            assert refused.json()["code"]
