"""End to end in a real headless Chromium: simulator -> ingest -> alerts -> dashboard.

Six simulated bikes ride one three-minute ride each in real time; the simulator's seed makes
one rider push past their safe maximum. Screenshots (desktop and phone width) are saved
under artifacts/dashboard/ (DASHBOARD_ARTIFACTS). With CI=true a missing browser fails.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from services.common.config import Settings
from services.common.kafka import ensure_topics
from tests import harness
from tests.dashboard.browser import ARTIFACTS, DESKTOP, FLAGS, PHONE, find_chromium
from tests.dashboard.stack import Stack, running_stack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BIKES, SECONDS, SEED = 6, 180, 3
IDLE_S = 8.0


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def stack(
    broker: str, pg_server: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole live path, started once for the module."""
    workdir = tmp_path_factory.mktemp("dashboard-e2e")
    with harness.cloned_database(pg_server, pg_template) as dsn:
        settings = harness.test_settings(broker, dsn, workdir)
        ensure_topics(settings, [settings.topic_raw, settings.topic_events, settings.topic_alerts])
        with running_stack(settings, workdir) as st:
            st.start("ingest", "ingest")
            st.start("alerts", "alerts")
            st.start_dashboard(idle_s=IDLE_S)
            st.start(
                "simulator", "simulate", "--bikes", str(BIKES), "--rides", "1",
                "--seconds", str(SECONDS), "--speed", "realtime", "--seed", str(SEED),
            )  # fmt: skip
            yield st


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        yield b
        b.close()


class Pages:
    """Opens pages and records every console error and page error they raise."""

    def __init__(self, browser: Any, url: str) -> None:
        self.browser, self.url = browser, url
        self.errors: list[str] = []
        self.opened: list[Any] = []

    def open(self, path: str, viewport: dict[str, int] = DESKTOP) -> Any:
        page = self.browser.new_page(viewport=viewport)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(self.url + path)
        self.opened.append(page)
        return page

    def close(self) -> None:
        for page in self.opened:
            page.close()


@pytest.fixture
def pages(browser: Any, stack: Stack) -> Iterator[Pages]:
    p = Pages(browser, stack.dashboard_url)
    yield p
    p.close()
    assert p.errors == [], f"browser console errors: {p.errors}"


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def seconds(text: str) -> int:
    """'1:05' or '1:02:05' as seconds."""
    total = 0
    for part in text.strip().split(":"):
        total = total * 60 + int(part)
    return total


def see(page: Any, selector: str, timeout_s: float = 45) -> None:
    """Wait for the selector; on failure keep a screenshot of what the page showed instead.
    Deadlines are generous: the machine running the suite may be busy."""
    try:
        page.wait_for_selector(selector, timeout=int(timeout_s * 1000))  # the one real wait
    except Exception:
        name = "failed-" + re.sub(r"[^a-z0-9]+", "-", selector.lower()).strip("-")
        shot(page, name)
        raise


def _wait(check: Any, timeout: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} within {timeout:.0f} s\n{stack.log('dashboard')[-2000:]}")


def test_current_ride_heart_rate_changes(pages: Pages, stack: Stack) -> None:
    page = pages.open("/ride?bike=SN0000")
    see(page, "#ride-hr-now")
    seen: set[str] = set()

    def changed() -> bool:
        seen.add(page.inner_text("#ride-hr-now"))
        return len(seen - {"--"}) >= 3

    _wait(changed, 60, "the heart rate did not change", stack)
    first = seconds(page.inner_text("#ride-elapsed"))
    _wait(
        lambda: seconds(page.inner_text("#ride-elapsed")) > first,
        10,
        "ride time stuck",
        stack,
    )
    assert "bpm" in page.inner_text("#ride-live") and "kJ" in page.inner_text("#ride-live")
    assert page.locator("#ride-hr .scatterlayer .trace").count() >= 1
    shot(page, "ride-desktop")
    phone = pages.open("/ride?bike=SN0000", PHONE)
    see(phone, "#ride-hr-now")
    see(phone, "#ride-hr .scatterlayer .trace")
    shot(phone, "ride-phone")


def _alerted_bike(settings: Settings) -> str | None:
    conn = psycopg2.connect(settings.require_database())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT bike_serial FROM daily.alerts ORDER BY detected_at LIMIT 1")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def test_alert_banner_for_the_rider_over_the_limit(pages: Pages, stack: Stack) -> None:
    # Runs second: the simulated rider is over their limit for about half a minute only.
    bike = _wait(lambda: _alerted_bike(stack.settings), SECONDS, "no alert was raised", stack)
    page = pages.open(f"/ride?bike={bike}")
    see(page, "#alert-banner")
    assert "safe maximum" in page.inner_text("#alert-banner")
    see(page, "#ride-hr .scatterlayer .trace")
    shot(page, "alert-desktop")
    phone = pages.open(f"/ride?bike={bike}", PHONE)
    see(phone, "#alert-banner")
    see(phone, "#ride-hr .scatterlayer .trace")
    shot(phone, "alert-phone")


def _rider_on(settings: Settings, bike: str) -> int:
    conn = psycopg2.connect(settings.require_database())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT user_id FROM daily.rides WHERE bike_serial = %s", (bike,))
            row = cur.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        conn.close()


def test_pick_a_bike_by_rider_number(pages: Pages, stack: Stack) -> None:
    page = pages.open("/", PHONE)
    see(page, "text=Pick your bike")
    assert "in use: choose one above" in page.inner_text("#ride-status")
    shot(page, "pick-phone")
    user_id = _rider_on(stack.settings, "SN0001")
    page.fill("#ride-rider", "12x")
    page.press("#ride-rider", "Enter")
    see(page, "text=A rider number has only digits.")
    page.fill("#ride-rider", str(user_id))
    page.press("#ride-rider", "Enter")
    see(page, "#ride-hr-now")
    assert "Bike SN0001" in page.inner_text("#ride-live")


def test_leaderboard_reorders(pages: Pages, stack: Stack) -> None:
    page = pages.open("/leaderboard")
    see(page, "table.board tbody tr")

    def order() -> list[str]:
        return page.eval_on_selector_all(
            "table.board tbody tr", "rows => rows.map(r => r.dataset.bike)"
        )

    first = order()
    _wait(
        lambda: len(order()) >= 2 and order() != first, 90, "the leaderboard never reordered", stack
    )
    shot(page, "leaderboard-desktop")
    phone = pages.open("/leaderboard", PHONE)
    see(phone, "table.board tbody tr")
    shot(phone, "leaderboard-phone")


def test_recent_rides_charts_render(pages: Pages, stack: Stack) -> None:
    page = pages.open("/recent")
    see(page, "#recent-gender .barlayer .point")
    see(page, "#recent-brackets .barlayer .point")
    see(page, "#recent-power .scatterlayer .point")
    assert "rides" in page.inner_text("#recent-summary")
    page.locator("#recent-genders").get_by_text("Male", exact=True).click()  # filter: no errors
    page.wait_for_timeout(1500)
    shot(page, "recent-desktop")
    phone = pages.open("/recent", PHONE)
    see(phone, "#recent-hr .scatterlayer .point")
    shot(phone, "recent-phone")
    fleet = pages.open("/fleet")
    see(fleet, "text=Riders today")
    see(fleet, "text=Busiest cities today")
    shot(fleet, "fleet-desktop")


def test_fleet_health_lists_bikes_and_flags_those_below_the_threshold(
    pages: Pages, stack: Stack
) -> None:
    from services.common import db
    from services.quality import job
    from services.quality import repository as quality_repo
    from services.quality.detectors import Quality

    settings = stack.settings.model_copy(update={"quality_min_readings": 30})
    clean = _wait(lambda: (r := job.run(settings)).judged == BIKES and r, 90, "bikes judged", stack)
    assert clean.opened == []  # the simulated fleet here has no faults
    # One bike flagged as the job flags one: through its own repository function.
    conn = db.connect(stack.settings.require_database())
    with db.transaction(conn) as cur:
        stuck = Quality(120, {"stuck": 0.4}, 0.5, ["stuck"])
        assert quality_repo.open_incident(cur, bike="SN0002", at=datetime.now(UTC), quality=stuck)
    conn.close()
    page = pages.open("/fleet-health")
    see(page, "text=Flagged now")
    see(page, ".status.flagged")
    text = page.inner_text("#health")
    assert "SN0000" in text and "flagged since" in text and "ok" in text
    shot(page, "fleet-health-desktop")
    phone = pages.open("/fleet-health", PHONE)
    see(phone, ".status.flagged")
    shot(phone, "fleet-health-phone")


def test_not_in_use_after_the_bike_stops(pages: Pages, stack: Stack) -> None:
    sim = next(p for name, p in stack.procs if name == "simulator")
    sim.wait(SECONDS + 60)
    page = pages.open("/ride?bike=SN0000")
    see(page, "#ride-not-in-use", IDLE_S + 45)
    assert "Energy" in page.inner_text("#ride-status")
    see(page, "#ride-power .scatterlayer .trace")
    shot(page, "not-in-use-desktop")
    phone = pages.open("/ride?bike=SN0000", PHONE)
    see(phone, "#ride-not-in-use")
    see(phone, "#ride-power .scatterlayer .trace")
    shot(phone, "not-in-use-phone")
    empty = pages.open("/leaderboard", PHONE)
    see(empty, "text=Nobody is riding right now")
    shot(empty, "empty-leaderboard-phone")
