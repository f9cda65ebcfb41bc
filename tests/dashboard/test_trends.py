"""The trends page in a real headless Chromium, over aggregates compress made from rides.

Lean: no broker and no live feed, only the Dash app under waitress in this process over a
fresh database; screenshots (desktop and phone width) go to artifacts/dashboard/.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from services.common.config import Settings
from services.common.pool import open_pool
from services.dashboard.app import Context, create_app
from services.dashboard.live import make_fleet
from services.dashboard.recent import Aggregates
from tests.common.conftest import compress_settings, conn  # noqa: F401  (shared fixtures)
from tests.compress.builders import add_rider, write_ride
from tests.dashboard.browser import PHONE
from tests.dashboard.test_browser import Pages, browser, chromium, see, shot  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def url(conn, compress_settings, database_url: str) -> Iterator[str]:  # noqa: F811
    """The dashboard over three riders in two cities, their rides of the last hours rolled up."""
    from waitress.server import create_server

    from services.compress import run

    now = datetime.now(UTC).replace(microsecond=0)
    with conn, conn.cursor() as cur:
        for user, city in ((1, "Leeds"), (2, "Leeds"), (3, "York")):
            add_rider(cur, user, details_at=now - timedelta(days=1), city=city)
        for i in range(9):
            start = now - timedelta(hours=8 - i, minutes=40)
            write_ride(cur, 100 + i, 1 + i % 3, started_at=start, seconds=900 + 120 * i,
                       bike_serial=f"SN000{i % 4}")  # fmt: skip
    run(conn, now=now, settings=compress_settings)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=SecretStr(database_url), dashboard_cache_s=0.0
    )
    pool = open_pool(database_url, max_size=2)
    aggregates = Aggregates(pool, window_h=12, bucket_min=15, ttl_s=0.0)
    app = create_app(Context(settings, make_fleet(settings), aggregates))
    server = create_server(app.server, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=10)
        pool.close()


def test_trends_page_charts_hourly_daily_per_city_and_bike(browser: Any, url: str) -> None:  # noqa: F811
    pages = Pages(browser, url)
    try:
        page = pages.open("/trends")
        see(page, "#trends-rides .barlayer .point")
        see(page, "#trends-hr .scatterlayer .point")
        assert "with rides for the whole fleet" in page.inner_text("#trends-summary")
        shot(page, "trends-hourly-desktop")
        page.get_by_text("Daily (60 days)").click()
        page.wait_for_function(
            "document.querySelector('#trends-summary').innerText.includes('every day')"
        )
        page.locator("#trends-scope").click()
        page.get_by_text("City: York", exact=True).click()
        page.wait_for_function(
            "document.querySelector('#trends-summary').innerText.includes('riders of York')"
        )
        see(page, "#trends-energy .barlayer .point")
        shot(page, "trends-daily-york-desktop")
        phone = pages.open("/trends", PHONE)
        see(phone, "#trends-power .scatterlayer .point")
        shot(phone, "trends-hourly-phone")
    finally:
        pages.close()
    assert pages.errors == [], pages.errors
