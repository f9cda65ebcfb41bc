"""The report's charts as PNG bytes: matplotlib's Agg renderer, no display, no browser.

Sized for an A4 column read on a phone: one chart per row, large type, values written on
the bars so nobody has to read a scale. Output is byte-for-byte repeatable (bundled DejaVu
font, no timestamps or software tag in the PNG).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from services.report.data import GENDERS, DayReport  # noqa: E402

BRAND = "#0B5563"  # petrol blue of the header
ACCENT = "#E07A1F"  # orange: heart rate
GREY = "#5F6B73"
WIDTH_IN = 7.0
HEIGHT_IN = 3.1
DPI = 170

_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 15,
    "axes.titlesize": 17,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 12,
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
    "svg.hashsalt": "deloton",
}


def _figure(height: float = HEIGHT_IN) -> tuple[Figure, plt.Axes]:
    with plt.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
        ax = fig.add_subplot()
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def horizontal_bars(title: str, labels: Sequence[str], values: Sequence[int]) -> bytes:
    """Counts by category as labelled horizontal bars (riders by gender)."""
    with plt.rc_context(_STYLE):
        fig, ax = _figure(0.9 + 0.55 * len(labels))
        y = list(range(len(labels)))[::-1]
        ax.barh(y, values, color=BRAND, height=0.6)
        ax.set_yticks(y, labels)
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        top = max(values, default=0) or 1
        ax.set_xlim(0, top * 1.15)
        for yi, v in zip(y, values, strict=True):
            ax.text(v + top * 0.01, yi, f"{v:,}", va="center", fontsize=14, fontweight="bold")
        fig.tight_layout()
        return _png(fig)


def vertical_bars(
    title: str, labels: Sequence[str], values: Sequence[int], *, every: int = 1
) -> bytes:
    """Counts by ordered category as labelled columns (riders by age, bikes in use by hour)."""
    with plt.rc_context(_STYLE):
        fig, ax = _figure()
        x = list(range(len(labels)))
        ax.bar(x, values, color=BRAND, width=0.7)
        ax.set_xticks(x[::every], list(labels)[::every])
        ax.set_title(title)
        ax.grid(axis="x", visible=False)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        top = max(values, default=0) or 1
        ax.set_ylim(0, top * 1.2)
        if every == 1:
            for xi, v in zip(x, values, strict=True):
                ax.text(xi, v + top * 0.02, f"{v:,}", ha="center", fontsize=13, fontweight="bold")
        fig.tight_layout()
        return _png(fig)


def hourly_line(
    title: str, labels: Sequence[str], values: Sequence[float | None], *, unit: str, color: str
) -> bytes:
    """A value through the day; hours without data are gaps, not zeros."""
    with plt.rc_context(_STYLE):
        fig, ax = _figure()
        x = list(range(len(labels)))
        y = [float("nan") if v is None else v for v in values]
        ax.plot(x, y, color=color, linewidth=2.5, marker="o", markersize=5)
        every = 3 if len(labels) > 12 else 1
        ax.set_xticks(x[::every], [label[:5] for label in labels][::every])
        ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_title(title)
        ax.set_ylabel(unit)
        known = [v for v in values if v is not None]
        if known:
            lo, hi = min(known), max(known)
            pad = max((hi - lo) * 0.25, hi * 0.05, 1.0)
            ax.set_ylim(max(0.0, lo - pad), hi + pad)
        fig.tight_layout()
        return _png(fig)


def for_report(report: DayReport) -> dict[str, bytes]:
    """Every chart of a day's report by name; none for a day without rides."""
    if report.empty:
        return {}
    labels = report.window.slot_labels()
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
            "Bikes in use by hour", [lab[:2] for lab in labels], report.bikes_in_use, every=3
        ),
    }
    if any(v is not None for v in report.hourly_heart_rate):
        images["heart_rate"] = hourly_line(
            "Average heart rate by hour", labels, report.hourly_heart_rate, unit="bpm", color=ACCENT
        )
    if any(v is not None for v in report.hourly_power):
        images["power"] = hourly_line(
            "Average power by hour", labels, report.hourly_power, unit="W", color=BRAND
        )
    return images
