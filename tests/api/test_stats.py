"""GET /stats/{hourly|daily}: the aggregates compress keeps, bounded and validated."""

from __future__ import annotations

import pytest

from tests.api.conftest import LiveApi
from tests.api.test_routes import assert_error
from tests.compress.builders import NOW, add_rider, at, write_ride

pytestmark = pytest.mark.postgres


@pytest.fixture
def summarised(conn, compress_settings):
    """Rider 1 (Leeds) rides twice on SN0001 (09:00, 10:00), rider 2 (Hôrsham) once on B."""
    from services.compress import run

    with conn, conn.cursor() as cur:
        add_rider(cur, 1, details_at=at("2026-11-20 08:00:00"), city="Leeds")
        add_rider(cur, 2, details_at=at("2026-11-20 08:00:00"), city="Hôrsham", first_name="Bo")
        write_ride(cur, 11, 1, started_at=at("2026-11-20 09:00:00"), seconds=600)
        write_ride(cur, 12, 1, started_at=at("2026-11-20 10:00:00"), seconds=300)
        write_ride(cur, 21, 2, started_at=at("2026-11-20 09:30:00"), seconds=200, bike_serial="B")
    run(conn, now=NOW, settings=compress_settings)


def _figures(body: dict) -> list[tuple[str, str, int, int, int]]:
    return [(i["bucket"], i["key"], i["rides"], i["riders"], i["riding_s"]) for i in body["items"]]


def test_stats_success_bad_input_and_auth(live_api: LiveApi, summarised) -> None:
    day = {"from": "2026-11-20", "to": "2026-11-21"}
    with live_api.client("read") as c:
        r = c.get("/stats/hourly", params=day)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["scope"] == "fleet" and body["truncated"] is False
        assert body["from"] == "2026-11-20T00:00:00Z" and body["to"] == "2026-11-21T00:00:00Z"
        assert _figures(body) == [
            ("2026-11-20T09:00:00Z", "", 2, 2, 800),
            ("2026-11-20T10:00:00Z", "", 1, 1, 300),
        ]
        daily = c.get("/stats/daily", params=day).json()
        assert _figures(daily) == [("2026-11-20T00:00:00Z", "", 3, 2, 1100)]
        item = daily["items"][0]
        assert item["energy_kj"] > 0 and item["max_power"] >= item["avg_power"] > 0
        assert item["hr_readings"] <= 1100 and item["max_heart_rate"] >= item["avg_heart_rate"]
        city = c.get("/stats/daily", params={**day, "city": "HORSHAM"}).json()
        assert city["scope"] == "city" and _figures(city) == [
            ("2026-11-20T00:00:00Z", "Hôrsham", 1, 1, 200)
        ]
        bike = c.get("/stats/hourly", params={**day, "bike": "SN0001"}).json()
        assert _figures(bike) == [
            ("2026-11-20T09:00:00Z", "SN0001", 1, 1, 600),
            ("2026-11-20T10:00:00Z", "SN0001", 1, 1, 300),
        ]
        late = {"from": "2026-11-20T10:00:00+00:00", "to": "2026-11-20T11:00:00"}
        assert len(c.get("/stats/hourly", params=late).json()["items"]) == 1
        assert c.get("/stats/hourly", params={**day, "bike": "nope"}).json()["items"] == []

        assert_error(c.get("/stats/weekly", params=day), 422)
        assert_error(
            c.get("/stats/hourly", params={"from": "2026-11-21", "to": "2026-11-20"}),
            422,
            "invalid_range",
        )
        assert_error(
            c.get("/stats/hourly", params={"from": "2026-11-20", "to": "2026-11-20"}),
            422,
            "invalid_range",
        )
        assert_error(c.get("/stats/hourly", params={"from": "20-11-2026"}), 422)
        assert_error(c.get("/stats/hourly", params={"from": "2026-02-30"}), 422)
        # A number in any spelling is refused, not read as a Unix time.
        for number in ("1700000000", "3.472090642149673e-286", "-1E5", " 17e8"):
            assert_error(c.get("/stats/hourly", params={"to": number}), 422)
        assert_error(
            c.get("/stats/hourly", params={"from": "2026-01-01", "to": "2026-03-01"}),
            422,
            "range_too_long",
        )
        assert_error(
            c.get("/stats/daily", params={**day, "bike": "B", "city": "Leeds"}),
            422,
            "invalid_filter",
        )
        assert_error(c.get("/stats/daily", params={"from": "0001-01-01"}), 422)
        assert_error(c.get("/stats/daily", params={**day, "bikes": "B"}), 400)
        assert_error(c.get("/stats/daily", params={"from": "1763600000", "to": "2026-11-21"}), 422)
        twice = c.get("/stats/daily?city=Leeds&city=York&from=2026-11-20&to=2026-11-21")
        assert_error(twice, 400, "repeated_parameter")
    with live_api.client(None) as c:
        assert_error(c.get("/stats/daily", params=day), 401, "unauthorized")
        assert_error(
            c.get("/stats/daily", params=day, headers={"Authorization": "Bearer nope"}), 401
        )
