"""/daily keeps the list of a day's rides for API_DAILY_CACHE_S and reads each page afresh."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import api_settings, make_key, serving
from tests.api.test_routes import rides  # noqa: F401  (a fixture)
from tests.compress.builders import at, write_ride

pytestmark = pytest.mark.postgres

DAY = {"date": "2026-11-20"}


def ids(page: dict) -> list[int]:
    return [r["ride_id"] for r in page["items"]]


@pytest.mark.usefixtures("rides")
def test_the_list_is_reused_pages_are_fresh_and_a_delete_here_shows_at_once(
    database_url: str, conn
) -> None:
    settings = api_settings(database_url, api_daily_cache_s=3600.0)
    token = make_key(database_url, "daily", "read,admin")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(settings) as url, httpx.Client(base_url=url, headers=headers) as c:
        first = c.get("/daily", params={**DAY, "limit": 2}).json()
        assert ids(first) == [11, 21] and first["next_offset"] == 2
        with conn, conn.cursor() as cur:
            # A ride starting now, and a ride deleted by another API process (its tombstone
            # is written first): the list does not know either yet.
            write_ride(cur, 14, 2, started_at=at("2026-11-20 08:00:00"), seconds=30)
            cur.execute("INSERT INTO historical.deleted_rides (ride_id) VALUES (21)")
        page = c.get("/daily", params={**DAY, "limit": 2}).json()
        # The deleted ride is not shown (a page is read afresh), and its page is one short
        # but the pages after it are still offered.
        assert ids(page) == [11] and page["next_offset"] == 2
        assert ids(c.get("/daily", params={**DAY, "limit": 2, "offset": 2}).json()) == [12, 13]
        assert (
            c.get("/daily", params={**DAY, "limit": 2, "offset": 2}).json()["next_offset"] is None
        )
        # A delete through this process clears the lists: the new ride shows too.
        assert c.delete("/ride/12").status_code == 200
        assert ids(c.get("/daily", params=DAY).json()) == [14, 11, 13]


@pytest.mark.usefixtures("rides")
def test_without_the_cache_every_request_lists_the_day(database_url: str, conn) -> None:
    settings = api_settings(database_url, api_daily_cache_s=0.0)
    token = make_key(database_url, "daily-fresh", "read")
    headers = {"Authorization": f"Bearer {token}"}
    with serving(settings) as url, httpx.Client(base_url=url, headers=headers) as c:
        assert ids(c.get("/daily", params=DAY).json()) == [11, 21, 12, 13]
        with conn, conn.cursor() as cur:
            write_ride(cur, 14, 2, started_at=at("2026-11-20 08:00:00"), seconds=30)
        assert ids(c.get("/daily", params=DAY).json()) == [14, 11, 21, 12, 13]
