"""The report's charts as PNG bytes: matplotlib's Agg renderer, no display, no browser.

Sized for an A4 column read on a phone: one chart per row, large type, values written on
the columns so nobody has to read a scale. Output is byte-for-byte repeatable (bundled DejaVu
font, no timestamps or software tag in the PNG).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from services.report.data import GENDERS, DayReport

BRAND = "#0B5563"  # petrol blue of the header
ACCENT = "#D9631E"  # orange: heart rate
GREY = "#5F6B73"
WIDTH_IN = 7.0
HEIGHT_IN = 3.1
HOURLY_IN = 2.6  # three hourly charts share a page
DPI = 170

_STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 15,
    "axes.labelsize": 14,
    "axes.edgecolor": "#B8C2C8",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": 13,
    "ytick.labelsize": 13,
    "xtick.color": GREY,
    "ytick.color": GREY,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#E3E8EB",
    "grid.linewidth": 1.0,
}


def _figure(title: str, height: float = HEIGHT_IN) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
    ax = fig.add_subplot()
    # The title flush with the image's left edge, the same on every chart.
    fig.suptitle(title, x=0.015, y=0.97, ha="left", va="top", fontsize=17, fontweight="bold")
    return fig, ax


def _png(fig: Figure, height: float) -> bytes:
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 1 - 0.3 / height))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def horizontal_bars(title: str, labels: Sequence[str], values: Sequence[int]) -> bytes:
    """Counts by category as labelled horizontal bars (riders by gender)."""
    height = 1.0 + 0.55 * len(labels)
    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]
        fig, ax = _figure(title, height)
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=BRAND, height=0.6)
        ax.set_yticks(y, labels)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        top = max(values, default=0) or 1
        ax.set_xlim(0, top * 1.15)
        for yi, v in zip(y, values, strict=True):
            ax.text(v + top * 0.01, yi, f"{v:,}", va="center", fontsize=14, fontweight="bold")
        return _png(fig, height)


def vertical_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    every: int = 1,
    ticks: Sequence[int] | None = None,
    color: str = BRAND,
    decimals: int = 0,
    height: float = HEIGHT_IN,
) -> bytes:
    """Values by ordered category as columns (riders by age; by hour: bikes, averages).

    Columns carry their value when few enough to read; an hour without data has no column,
    not a zero.
    """
    with matplotlib.rc_context(_STYLE):  # type: ignore[arg-type]
        fig, ax = _figure(title, height)
        x = list(range(len(labels)))
        heights = [0.0 if v is None else float(v) for v in values]
        ax.bar(x, heights, color=color, width=0.7)
        at = list(ticks) if ticks is not None else x[::every]
        ax.set_xticks(at, [labels[i] for i in at])
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.grid(axis="x", visible=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=decimals == 0, nbins=4))
        top = max(heights, default=0.0) or 1.0
        ax.set_ylim(0, top * 1.22)
        shown = [(xi, float(v)) for xi, v in zip(x, values, strict=True) if v]
        if every == 1 or len(shown) <= 8:
            size = 13 if len(labels) <= 12 else 11
            for xi, v in shown:
                ax.text(xi, v + top * 0.03, f"{v:,.{decimals}f}", ha="center",
                        fontsize=size, fontweight="bold")  # fmt: skip
        return _png(fig, height)


def hourly_labels(labels: Sequence[str]) -> list[str]:
    """Hour labels short enough for 23-25 columns: `07`, and `01 GMT` on a repeated hour."""
    return [label[:2] + label[5:] for label in labels]


def hour_ticks(labels: Sequence[str]) -> list[int]:
    """Columns to label: every third clock hour (00, 03, ...), whatever the day's length."""
    seen: set[str] = set()
    ticks = []
    for i, label in enumerate(labels):
        hour = label[:2]
        if int(hour) % 3 == 0 and hour not in seen:
            ticks.append(i)
        seen.add(hour)
    return ticks


def for_report(report: DayReport) -> dict[str, bytes]:
    """Every chart of a day's report by name; none for a day without rides."""
    if report.empty:
        return {}
    labels = hourly_labels(report.window.slot_labels())
    ticks = hour_ticks(labels)
    images = {
        "gender": horizontal_bars(
            "Riders by gender",
            [label for _, label in GENDERS],
            [report.riders_by_gender[g] for g, _ in GENDERS],
        ),
        "age": vertical_bars(
            "Riders by age", list(report.riders_by_age), list(report.riders_by_age.values())
        ),
        "bikes": vertical_bars(
            "Bikes in use by hour",
            labels,
            report.bikes_in_use,
            every=3,
            ticks=ticks,
            height=HOURLY_IN,
        ),
    }
    if any(v is not None for v in report.hourly_heart_rate):
        images["heart_rate"] = vertical_bars(
            "Average heart rate by hour (bpm)",
            labels,
            report.hourly_heart_rate,
            every=3,
            ticks=ticks,
            color=ACCENT,
            height=HOURLY_IN,
        )
    if any(v is not None for v in report.hourly_power):
        images["power"] = vertical_bars(
            "Average power by hour (W)",
            labels,
            report.hourly_power,
            every=3,
            ticks=ticks,
            height=HOURLY_IN,
        )
    return images
