"""Small inline SVG plots for the HTML report: an interval bar per table row, and predicted
against measured values with each prediction's interval. Plain SVG text, no plotting library,
so the report stays one offline file."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["axis_range", "inline_svg", "interval_bar", "predicted_vs_measured"]


def inline_svg(svg: str) -> str:
    """An SVG document as an element to place in HTML: its XML declaration dropped."""
    return svg.partition("?>")[2] if svg.startswith("<?xml") else svg


def axis_range(values: Sequence[float | None], pad: float = 0.05) -> tuple[float, float]:
    """(low, high) over the finite ``values``, widened by ``pad`` x the range on each side
    (by 0.5 where all values are equal; (0, 1) without any)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    margin = pad * (high - low) if high > low else 0.5
    return low - margin, high + margin


def interval_bar(low: float, prediction: float, high: float, axis: tuple[float, float],
                 width: int = 120, height: int = 14) -> str:
    """An error bar from ``low`` to ``high`` with a tick at ``prediction``, on ``axis`` (shared
    by every row, so bar lengths compare)."""
    lo, hi = axis

    def x(v: float) -> float:
        return 2 + (width - 4) * (min(max(v, lo), hi) - lo) / (hi - lo)

    y = height / 2
    return (f"<svg width='{width}' height='{height}' role='img' "
            f"aria-label='interval {low:.2f} to {high:.2f}'>"
            f"<line x1='{x(low):.1f}' y1='{y}' x2='{x(high):.1f}' y2='{y}' stroke='#555' "
            f"stroke-width='2'/><line x1='{x(low):.1f}' y1='3' x2='{x(low):.1f}' "
            f"y2='{height - 3}' stroke='#555'/><line x1='{x(high):.1f}' y1='3' "
            f"x2='{x(high):.1f}' y2='{height - 3}' stroke='#555'/>"
            f"<circle cx='{x(prediction):.1f}' cy='{y}' r='3' fill='#c00'/></svg>")


def predicted_vs_measured(measured: Sequence[float], predicted: Sequence[float],
                          low: Sequence[float], high: Sequence[float], label: str,
                          level: float, size: int = 360) -> str:
    """Predicted (y, with each interval as a vertical bar) against measured (x), the
    diagonal drawn; points whose interval misses the measured value in red."""
    rows = [(m, p, a, b) for m, p, a, b in zip(measured, predicted, low, high)
            if all(v is not None and math.isfinite(v) for v in (m, p, a, b))]
    lo, hi = axis_range([v for row in rows for v in row])
    margin = 40

    def sx(v: float) -> float:
        return margin + (size - margin - 10) * (v - lo) / (hi - lo)

    def sy(v: float) -> float:
        return size - margin - (size - margin - 10) * (min(max(v, lo), hi) - lo) / (hi - lo)

    parts = [f"<svg width='{size}' height='{size}' role='img' "
             f"aria-label='predicted against measured'>",
             f"<rect x='{margin}' y='10' width='{size - margin - 10}' height='{size - margin - 10}' "
             f"fill='none' stroke='#999'/>",
             f"<line x1='{sx(lo):.1f}' y1='{sy(lo):.1f}' x2='{sx(hi):.1f}' y2='{sy(hi):.1f}' "
             f"stroke='#999' stroke-dasharray='4 3'/>"]
    inside = 0
    for m, p, a, b in rows:
        hit = a <= m <= b
        inside += hit
        colour = "#246" if hit else "#c00"
        parts.append(f"<line x1='{sx(m):.1f}' y1='{sy(a):.1f}' x2='{sx(m):.1f}' y2='{sy(b):.1f}' "
                     f"stroke='{colour}' stroke-opacity='0.45'/>"
                     f"<circle cx='{sx(m):.1f}' cy='{sy(p):.1f}' r='2.5' fill='{colour}'/>")
    for tick in np.linspace(lo, hi, 5):
        parts.append(f"<text x='{sx(tick):.1f}' y='{size - margin + 14}' font-size='10' "
                     f"text-anchor='middle'>{tick:.1f}</text><text x='{margin - 4}' "
                     f"y='{sy(tick) + 3:.1f}' font-size='10' text-anchor='end'>{tick:.1f}</text>")
    name = html.escape(label)
    parts.append(f"<text x='{(size + margin) / 2:.0f}' y='{size - 6}' font-size='11' "
                 f"text-anchor='middle'>measured {name}</text><text x='12' y='{size / 2:.0f}' "
                 f"font-size='11' text-anchor='middle' transform='rotate(-90 12 {size / 2:.0f})'>"
                 f"predicted {name}</text></svg>")
    caption = (f"{inside} of {len(rows)} measured values ({inside / max(len(rows), 1):.0%}) lie "
               f"inside their {level:.0%} intervals (red: outside).")
    return f"<figure>{''.join(parts)}<figcaption>{html.escape(caption)}</figcaption></figure>"
