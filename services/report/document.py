"""The report as an A4 PDF (fpdf2): branded header, headline cards, tables, the charts.

Deterministic: the fonts are the DejaVu files matplotlib ships (embedded, subset), and the
creation date is the end of the report's day, so the same data gives the same bytes.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.report.data import GENDERS, DayReport, Metric
from services.report.text import change, hours_minutes, number, plural

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT = "DejaVu"
BRAND_RGB = (11, 85, 99)
INK = (33, 37, 41)
MUTED = (95, 107, 115)
CARD_RGB = (240, 245, 247)
UP_RGB = (26, 127, 55)
DOWN_RGB = (180, 35, 24)
FEWER_IS_BETTER = frozenset({"alerts"})
MARGIN = 15.0
CONTENT_W = 210.0 - 2 * MARGIN


class _Pdf(FPDF):
    def __init__(self, report: DayReport) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.report = report
        self.set_margins(MARGIN, 34, MARGIN)
        self.set_auto_page_break(auto=True, margin=18)
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        day = report.day
        self.set_creation_date(datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC))
        self.set_title(f"Deloton daily report {day.isoformat()}")
        self.set_author("Deloton")
        self.set_creator("Deloton Stream")
        self.set_lang("en-GB")
        self.alias_nb_pages()

    def header(self) -> None:
        self.set_fill_color(*BRAND_RGB)
        self.rect(0, 0, 210, 26, style="F")
        self.set_text_color(255, 255, 255)
        self.set_xy(MARGIN, 6)
        self.set_font(FONT, "B", 20)
        self.cell(90, 9, "DELOTON", new_x=XPos.LEFT, new_y=YPos.NEXT)
        self.set_font(FONT, "", 11)
        self.cell(90, 6, "Daily executive report")
        self.set_xy(105, 6)
        self.set_font(FONT, "B", 14)
        self.cell(90, 9, self.report.day.strftime("%A %-d %B %Y"), align="R")
        self.set_xy(105, 15)
        self.set_font(FONT, "", 10)
        self.cell(90, 6, f"{self.report.hours}-hour day, {self.report.timezone}", align="R")
        self.set_text_color(*INK)
        self.set_y(34)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(FONT, "", 8.5)
        self.set_text_color(*MUTED)
        self.cell(
            CONTENT_W / 2,
            5,
            "Times are local. Each ride counts in the hour it started.",
        )
        self.cell(CONTENT_W / 2, 5, f"Page {self.page_no()} of {{nb}}", align="R")

    def heading(self, text: str) -> None:
        self.set_font(FONT, "B", 14)
        self.set_text_color(*BRAND_RGB)
        self.cell(CONTENT_W, 9, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)

    def paragraph(self, text: str, size: float = 11.5) -> None:
        self.set_font(FONT, "", size)
        self.multi_cell(CONTENT_W, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render(report: DayReport, images: dict[str, bytes]) -> bytes:
    """The PDF of the day's report, with the charts of `charts.for_report`."""
    pdf = _Pdf(report)
    pdf.add_page()
    if report.empty:
        pdf.heading("No rides")
        pdf.paragraph(
            f"No rides were recorded on {report.day.strftime('%A %-d %B %Y')}. "
            "The figures below compare the day with the days before it."
        )
        pdf.ln(3)
    _cards(pdf, report.headline)
    _alerts_and_quality(pdf, report)
    if report.empty:
        return bytes(pdf.output())
    _top_riders(pdf, report)
    pdf.add_page()
    _chart(pdf, images["gender"])
    _caption(pdf, report.riders_by_gender, {g: label for g, label in GENDERS})
    _chart(pdf, images["age"])
    _caption(pdf, report.riders_by_age, {b: b for b in report.riders_by_age})
    pdf.add_page()
    _chart(pdf, images["bikes"])
    _peak_line(pdf, report)
    _hourly(pdf, report, images)
    return bytes(pdf.output())


def _cards(pdf: _Pdf, metrics: list[Metric]) -> None:
    """Headline numbers, two a row: the figure, then previous day and 7-day average."""
    gap, h = 6.0, 31.0
    w = (CONTENT_W - gap) / 2
    top = pdf.get_y()
    for i, m in enumerate(metrics):
        x = MARGIN + (i % 2) * (w + gap)
        y = top + (i // 2) * (h + gap / 2)
        pdf.set_fill_color(*CARD_RGB)
        pdf.rect(x, y, w, h, style="F")
        pdf.set_xy(x + 4, y + 3)
        pdf.set_font(FONT, "", 11)
        pdf.set_text_color(*MUTED)
        pdf.cell(w - 8, 5.5, m.label)
        pdf.set_xy(x + 4, y + 9)
        pdf.set_font(FONT, "B", 21)
        pdf.set_text_color(*INK)
        pdf.cell(w - 8, 9.5, number(m.value, m.unit))
        for j, (name, base) in enumerate((("Previous day", m.previous), ("7-day avg", m.week_avg))):
            pdf.set_xy(x + 4, y + 19.5 + j * 5)
            pdf.set_font(FONT, "", 9.5)
            pdf.set_text_color(*MUTED)
            pdf.cell(26, 5, name)
            pdf.set_text_color(*INK)
            pdf.cell(30, 5, number(base, m.unit, average=j == 1))
            delta = m.change(base)
            # Green is good news: more rides, riders, time and energy; fewer alerts.
            good = delta is not None and (delta < 0 if m.key in FEWER_IS_BETTER else delta > 0)
            pdf.set_text_color(*(MUTED if not delta else UP_RGB if good else DOWN_RGB))
            pdf.set_font(FONT, "B", 9.5)
            pdf.cell(w - 64, 5, change(delta), align="R")
    pdf.set_text_color(*INK)
    pdf.set_y(top + 3 * (h + gap / 2) + 2)


def _alerts_and_quality(pdf: _Pdf, report: DayReport) -> None:
    pdf.heading("Alerts and data quality")
    raised, sent = report.alerts_raised, report.alerts_sent
    if raised:
        alerts = (
            f"Heart-rate alerts: {plural(raised, 'alert')} raised, "
            f"{plural(sent, 'email')} delivered to riders."
        )
    else:
        alerts = "Heart-rate alerts: none raised."
    pdf.paragraph(alerts)
    pdf.ln(1)
    if report.rejected:
        reasons = ", ".join(
            f"{reason.replace('_', ' ')} {n:,}" for reason, n in list(report.rejects.items())[:3]
        )
        quality = (
            f"Data quality: {plural(report.rejected, 'line')} rejected (main reasons: {reasons})."
        )
    else:
        quality = "Data quality: no lines rejected."
    pdf.paragraph(quality)
    pdf.ln(3)


def _top_riders(pdf: _Pdf, report: DayReport) -> None:
    pdf.heading(f"Top {len(report.top_riders)} riders by riding time")
    widths = (12.0, 66.0, 28.0, 38.0, CONTENT_W - 144.0)
    heads = ("#", "Rider", "Rides", "Riding time", "Energy")
    pdf.set_font(FONT, "B", 11)
    pdf.set_fill_color(*CARD_RGB)
    for w, text in zip(widths, heads, strict=True):
        pdf.cell(w, 8, text, fill=True, align="L" if text in ("#", "Rider") else "R")
    pdf.ln(8)
    pdf.set_font(FONT, "", 11.5)
    for rank, rider in enumerate(report.top_riders, start=1):
        row = (
            str(rank),
            rider.name,
            f"{rider.rides:,}",
            hours_minutes(rider.riding_s),
            f"{rider.energy_kj:,.0f} kJ",
        )
        for w, text in zip(widths, row, strict=True):
            pdf.cell(w, 8, text, align="L" if w in widths[:2] else "R")
        pdf.ln(8)


def _chart(pdf: _Pdf, png: bytes) -> None:
    pdf.image(io.BytesIO(png), x=MARGIN, w=CONTENT_W)
    pdf.set_y(pdf.get_y() + 2)


def _caption(pdf: _Pdf, counts: dict[str, int], names: dict[str, str]) -> None:
    """The chart's figures in words, for people who read rather than look (and screen readers)."""
    pdf.paragraph(", ".join(f"{names[k]} {v:,}" for k, v in counts.items()) + ".", size=10.5)
    pdf.ln(2)


def _peak_line(pdf: _Pdf, report: DayReport) -> None:
    peak = max(report.bikes_in_use, default=0)
    hour = report.window.slot_labels()[report.bikes_in_use.index(peak)]
    pdf.paragraph(f"Busiest hour: {hour}, with {plural(peak, 'bike')} in use.", size=10.5)


def _hourly(pdf: _Pdf, report: DayReport, images: dict[str, bytes]) -> None:
    for name, label, day_value, unit, values in (
        ("heart_rate", "heart rate", report.day_heart_rate, "bpm", report.hourly_heart_rate),
        ("power", "power", report.day_power, "W", report.hourly_power),
    ):
        if name not in images or day_value is None:
            pdf.heading(f"Average {label} by hour")
            pdf.paragraph(f"No {label} readings were recorded on this day.")
            continue
        _chart(pdf, images[name])
        known = [v for v in values if v is not None]
        pdf.paragraph(
            f"Day average {label}: {day_value:,.1f} {unit} "
            f"(hourly averages from {min(known):,.1f} to {max(known):,.1f} {unit}).",
            size=10.5,
        )
        pdf.ln(3)
