"""Small inline SVG charts for the HTML report: grouped histograms and box plots.

Hand-made so the report stays one self-contained file with no script and no external asset.
Every piece of text that reaches the SVG is XML-escaped here; the template inserts the
returned markup as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from conversation_engine.compare.stats import quantile

WIDTH = 520
HEIGHT = 280
MARGIN_LEFT = 48
MARGIN_RIGHT = 16
MARGIN_TOP = 36
MARGIN_BOTTOM = 52
COLORS = ("#3b6ea8", "#e07b28")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


def _fmt(value: float) -> str:
    """An axis or tooltip number: whole numbers as they are, others to 3 significant digits."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _unit(unit: str) -> str:
    """A unit after a number: " s", not "s" glued to it."""
    return f" {unit}" if unit else ""


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _open(title: str, aria: str) -> list[str]:
    return [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(aria)}" '
        'class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" class="chart-title">'
        f"{escape(title)}</text>",
    ]


def _legend(labels: Sequence[str]) -> list[str]:
    parts: list[str] = []
    x = MARGIN_LEFT
    for index, label in enumerate(labels):
        color = COLORS[index % len(COLORS)]
        y = HEIGHT - 14
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" class="chart-legend">{escape(label)}</text>')
        x += 24 + 7 * len(label)
    return parts


def bins_for(
    series: Sequence[Series], *, integer: bool = False, max_bins: int = 12
) -> list[tuple[float, float]]:
    """Shared bins `[low, high)` (the last one closed) covering every series' values."""
    values = [v for s in series for v in s.values]
    if not values:
        return []
    low, high = min(values), max(values)
    if integer:
        first, last = math.floor(low), math.ceil(high)
        step = max(1, math.ceil((last - first + 1) / max_bins))
        return [(start, start + step) for start in range(first, last + 1, step)]
    if high == low:
        return [(low, high)]
    width = (high - low) / min(max_bins, max(1, len(set(values))))
    count = math.ceil((high - low) / width)
    return [(low + i * width, low + (i + 1) * width) for i in range(count)]


def histogram_counts(values: Sequence[float], bins: Sequence[tuple[float, float]]) -> list[int]:
    counts = [0] * len(bins)
    for value in values:
        for index, (low, high) in enumerate(bins):
            last = index == len(bins) - 1
            if low <= value < high or (last and low <= value <= high):
                counts[index] += 1
                break
    return counts


def grouped_bars(
    title: str,
    categories: Sequence[str],
    counts: Sequence[Sequence[int]],
    labels: Sequence[str],
    x_label: str,
) -> str:
    """Side-by-side bars: one group per category, one bar per series."""
    parts = _open(title, f"{title}: " + ", ".join(labels))
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = _nice_max(max((c for row in counts for c in row), default=0))
    base_y = MARGIN_TOP + plot_h
    for step in range(5):
        value = top * step / 4
        y = base_y - plot_h * step / 4
        parts.append(
            f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" '
            'class="chart-grid"/>'
        )
        parts.append(
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-axis">'
            f"{escape(_fmt(value))}</text>"
        )
    if categories:
        group_w = plot_w / len(categories)
        bar_w = max(2.0, group_w * 0.8 / max(1, len(counts)))
        # Skip labels rather than let them overlap (about 6.5 px per character at 11 px).
        longest = max(len(category) for category in categories)
        label_every = max(1, math.ceil(longest * 6.5 / group_w))
        for index, category in enumerate(categories):
            group_x = MARGIN_LEFT + index * group_w + group_w * 0.1
            for series_index, row in enumerate(counts):
                value = row[index] if index < len(row) else 0
                height = plot_h * value / top
                x = group_x + series_index * bar_w
                color = COLORS[series_index % len(COLORS)]
                parts.append(
                    f'<rect x="{x:.1f}" y="{base_y - height:.1f}" width="{bar_w:.1f}" '
                    f'height="{height:.1f}" fill="{color}">'
                    f"<title>{escape(labels[series_index])}: {escape(category)} → {value}</title>"
                    "</rect>"
                )
            if index % label_every == 0:
                parts.append(
                    f'<text x="{MARGIN_LEFT + (index + 0.5) * group_w:.1f}" y="{base_y + 14:.1f}" '
                    f'text-anchor="middle" class="chart-axis">{escape(category)}</text>'
                )
    parts.append(
        f'<text x="{WIDTH - MARGIN_RIGHT}" y="{base_y + 30:.1f}" text-anchor="end" '
        f'class="chart-axis">{escape(x_label)}</text>'
    )
    parts.extend(_legend(labels))
    parts.append("</svg>")
    return "\n".join(parts)


def histogram(title: str, series: Sequence[Series], x_label: str, *, integer: bool = False) -> str:
    """A grouped histogram of several series over shared bins."""
    bins = bins_for(series, integer=integer)
    if integer:
        categories = [
            _fmt(low) if high - low == 1 else f"{_fmt(low)}–{_fmt(high - 1)}" for low, high in bins
        ]
    else:
        # Each bar is labelled by the lower edge of its bin.
        categories = [f"≥{_fmt(low)}" for low, _ in bins]
    counts = [histogram_counts(s.values, bins) for s in series]
    return grouped_bars(title, categories, counts, [s.label for s in series], x_label)


def box_plot(title: str, series: Sequence[Series], unit: str = "") -> str:
    """Horizontal box plots (min, p25, median, p75, max) on one shared axis."""
    parts = _open(title, f"{title}: " + ", ".join(s.label for s in series))
    values = [v for s in series for v in s.values]
    low = min(values, default=0.0)
    high = max(values, default=1.0)
    if high == low:
        high = low + 1.0
    plot_left, plot_right = MARGIN_LEFT + 70, WIDTH - MARGIN_RIGHT
    plot_w = plot_right - plot_left

    def x_of(value: float) -> float:
        return plot_left + plot_w * (value - low) / (high - low)

    row_h = (HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) / max(1, len(series))
    for step in range(5):
        value = low + (high - low) * step / 4
        x = x_of(value)
        parts.append(
            f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" y2="{HEIGHT - MARGIN_BOTTOM}" '
            'class="chart-grid"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 14}" text-anchor="middle" '
            f'class="chart-axis">{escape(_fmt(value))}{escape(_unit(unit))}</text>'
        )
    for index, item in enumerate(series):
        color = COLORS[index % len(COLORS)]
        center = MARGIN_TOP + row_h * (index + 0.5)
        parts.append(
            f'<text x="{MARGIN_LEFT + 62}" y="{center + 4:.1f}" text-anchor="end" '
            f'class="chart-axis">{escape(item.label[:14])}</text>'
        )
        if not item.values:
            parts.append(
                f'<text x="{plot_left}" y="{center + 4:.1f}" class="chart-axis">no data</text>'
            )
            continue
        q = [quantile(item.values, p) or 0.0 for p in (0.0, 0.25, 0.5, 0.75, 1.0)]
        box_h = min(28.0, row_h * 0.5)
        summary = ", ".join(
            f"{name} {_fmt(value)}{_unit(unit)}"
            for name, value in zip(("min", "p25", "median", "p75", "max"), q, strict=True)
        )
        parts.append(f"<g><title>{escape(item.label)}: {escape(summary)}</title>")
        parts.append(
            f'<line x1="{x_of(q[0]):.1f}" y1="{center:.1f}" x2="{x_of(q[4]):.1f}" '
            f'y2="{center:.1f}" stroke="{color}" stroke-width="2"/>'
        )
        for edge in (q[0], q[4]):
            parts.append(
                f'<line x1="{x_of(edge):.1f}" y1="{center - box_h / 3:.1f}" x2="{x_of(edge):.1f}" '
                f'y2="{center + box_h / 3:.1f}" stroke="{color}" stroke-width="2"/>'
            )
        parts.append(
            f'<rect x="{x_of(q[1]):.1f}" y="{center - box_h / 2:.1f}" '
            f'width="{max(1.0, x_of(q[3]) - x_of(q[1])):.1f}" height="{box_h:.1f}" '
            f'fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="2"/>'
        )
        parts.append(
            f'<line x1="{x_of(q[2]):.1f}" y1="{center - box_h / 2:.1f}" x2="{x_of(q[2]):.1f}" '
            f'y2="{center + box_h / 2:.1f}" stroke="{color}" stroke-width="3"/>'
        )
        parts.append("</g>")
    parts.extend(_legend([s.label for s in series]))
    parts.append("</svg>")
    return "\n".join(parts)
