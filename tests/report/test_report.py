"""The report's figures against the database and pandas; DST days; the empty day."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from services.common.pool import read_only_connection
from services.report import charts, data, document, job
from tests import harness
from tests.report import expected, pdftext, seed
from tests.report.conftest import DAY, query

HEADLINE = {
    "rides": "Rides",
    "riders": "Riders",
    "new_riders": "New riders",
    "riding_hours": "Riding time",
    "energy_kwh": "Energy output",
    "alerts": "Heart-rate alerts",
}


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _half_unit(printed: str) -> float:
    """Half of the last printed digit: how far a correctly rounded figure may be off."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10**-decimals + 1e-9


def _report(settings, day: date) -> tuple[data.DayReport, bytes]:
    with read_only_connection(settings.require_database()) as conn:
        report = data.load(conn, day=day, tz_name=settings.report_timezone)
    return report, document.render(report, charts.for_report(report))


def test_pdf_figures_equal_the_database_and_pandas(seeded, tmp_path):
    settings = seeded.for_test(tmp_path)
    result = job.run(settings, day=DAY)
    assert result.status == "stored" and result.rides > 0
    pdf = (tmp_path / "reports" / f"deloton-report-{DAY}.pdf").read_bytes()
    text = "\n".join(pdftext.pages(pdf))
    pdftext.render_pngs(pdf, "seeded-day")

    want = expected.day_figures(seeded.dsn, DAY)
    before = expected.day_figures(seeded.dsn, DAY - timedelta(days=1))
    week = [expected.day_figures(seeded.dsn, DAY - timedelta(days=n)) for n in range(1, 8)]
    # The seed: rides on DAY are partly summarised (morning) and partly still in daily.
    sources = {s for (s,) in query(seeded.dsn, "SELECT 'h' FROM historical.rides LIMIT 1")}
    assert sources and query(seeded.dsn, "SELECT count(*) FROM daily.readings")[0][0] > 0
    for key, label in HEADLINE.items():
        value, previous, week_avg = pdftext.headline(text, label)
        avg = sum(w[key] for w in week) / 7
        for printed, exact in ((value, want[key]), (previous, before[key]), (week_avg, avg)):
            assert _num(printed) == pytest.approx(exact, abs=_half_unit(printed)), (key, printed)

    # Alerts: the seed recorded 8 for the day's rides, 4 of them sent.
    assert "8 alerts raised, 4 emails delivered" in text
    rejected = query(seeded.dsn, "SELECT count(*) FROM daily.rejects")[0][0]
    assert rejected > 0
    assert f"{rejected:,} lines rejected" in text

    # Riders by gender and age, as the captions print them, against SQL over the riders.
    counts = dict(
        query(
            seeded.dsn,
            """SELECT gender, count(DISTINCT user_id) FROM (
                   SELECT user_id, started_at FROM daily.rides UNION ALL
                   SELECT user_id, started_at FROM historical.rides) r
               JOIN (SELECT DISTINCT ON (user_id) user_id, gender FROM (
                         SELECT user_id, gender FROM daily.riders UNION ALL
                         SELECT user_id, gender FROM historical.riders) x) p USING (user_id)
               WHERE started_at >= %s AND started_at < %s GROUP BY gender""",
            (f"{DAY}T00:00Z", f"{DAY + timedelta(days=1)}T00:00Z"),
        )
    )
    for g, label in data.GENDERS:
        assert f"{label} {counts.get(g, 0):,}" in text
    assert sum(counts.values()) == want["riders"]


def test_top_riders_show_first_name_and_initial_only(seeded, tmp_path):
    report, pdf = _report(seeded.for_test(tmp_path), DAY)
    text = "\n".join(pdftext.pages(pdf))
    assert report.top_riders
    surnames = [s for (s,) in query(seeded.dsn, "SELECT last_name FROM historical.riders "
                                                "UNION SELECT last_name FROM daily.riders")]  # fmt: skip
    for rider in report.top_riders:
        assert re.fullmatch(r"\S+ [A-Z]\.", rider.name)
        assert rider.name in text
    for surname in surnames:
        assert not re.search(rf"\b{re.escape(surname)}\b", text), surname


def test_same_data_gives_the_same_bytes(seeded, tmp_path):
    settings = seeded.for_test(tmp_path)
    assert _report(settings, DAY)[1] == _report(settings, DAY)[1]


def test_a_day_without_rides_gives_a_short_report(seeded, tmp_path):
    settings = seeded.for_test(tmp_path)
    day = date(2026, 11, 24)  # between the seeded days
    result = job.run(settings, day=day)
    pdf = (tmp_path / "reports" / f"deloton-report-{day}.pdf").read_bytes()
    pages = pdftext.pages(pdf)
    pdftext.render_pngs(pdf, "no-rides")
    assert result.rides == 0 and len(pages) == 1
    assert "No rides were recorded on Tuesday 24 November 2026" in pages[0]
    rides, previous, _ = pdftext.headline(pages[0], "Rides")
    assert rides == "0" and previous == "3"  # the 23rd had three rides


@pytest.mark.parametrize(
    ("day", "hours", "inside", "outside"),
    [
        # Spring forward: 01:00 GMT becomes 02:00 BST; the day is 00:00Z to 23:00Z.
        (date(2026, 3, 29), 23, "2026-03-29T22:30:00+00:00", "2026-03-29T23:20:00+00:00"),
        # Fall back: the day runs from 23:00Z the day before, 25 hours.
        (date(2026, 10, 25), 25, "2026-10-24T23:20:00+00:00", "2026-10-24T22:30:00+00:00"),
    ],
)
def test_a_day_spanning_a_dst_change(
    broker, pg_server, pg_template, tmp_path, day, hours, inside, outside
):
    with harness.cloned_database(pg_server, pg_template) as dsn:
        settings = harness.test_settings(broker, dsn, tmp_path, report_dir=tmp_path / "r")
        for n, start in enumerate((inside, outside, f"{day}T12:00:00+00:00")):
            seed.simulate(settings, bikes=2, rides=1, seconds=120, seed=11,
                          first_serial=10 * n, start=datetime.fromisoformat(start))  # fmt: skip
        seed.ingest(settings)
        report, pdf = _report(settings, day)
        pdftext.render_pngs(pdf, f"dst-{day}")
        want = expected.day_figures(dsn, day)
    assert report.hours == hours == len(report.bikes_in_use) == len(report.hourly_power)
    assert report.metric("rides").value == want["rides"] == 4  # two bikes, two starts inside
    labels = report.window.slot_labels()
    assert labels[0] == "00:00" and labels[-1] == "23:00"
    if hours == 23:
        assert "01:00" not in labels
    else:
        assert labels.count("01:00 BST") == 1 and labels.count("01:00 GMT") == 1
    text = "\n".join(pdftext.pages(pdf))
    assert f"{hours}-hour day, Europe/London" in text
    first_hour = report.window.slot_of(datetime.fromisoformat(inside))
    assert report.bikes_in_use[first_hour] == 2


@pytest.mark.parametrize(
    ("day", "ticks"),
    [
        (date(2026, 3, 29), [0, 2, 5, 8, 11, 14, 17, 20]),  # no 01:00: 03:00 is the 3rd hour
        (date(2026, 10, 25), [0, 4, 7, 10, 13, 16, 19, 22]),  # 01:00 twice
        (date(2026, 11, 26), [0, 3, 6, 9, 12, 15, 18, 21]),
    ],
)
def test_hour_axis_is_labelled_at_clock_hours(day, ticks):
    window = data.Window.of(day, data.zone("Europe/London"))
    labels = charts.hourly_labels(window.slot_labels())
    assert charts.hour_ticks(labels) == ticks
    assert [labels[i][:2] for i in ticks] == ["00", "03", "06", "09", "12", "15", "18", "21"]
