"""Small inline SVG line charts for the website's run pages (per-epoch losses and accuracy).

Drawn as text, with no plotting library, so that a site with hundreds of run pages builds in
seconds and the pages need nothing but the browser.  Each chart plots one or more series
``y[0], y[1], ...`` against epochs ``1, 2, ...``; ``None``/NaN points are gaps.  The y axis
spans ``[y_min, y_max]`` when given (``0`` to ``1`` for accuracies) or the data's range padded
by 5 %, with "nice" ticks (1, 2 or 5 times a power of ten); the legend sits below the axes so
it never covers a curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "line_chart", "nice_ticks"]

#: Colour-blind-safe palette (Okabe-Ito), cycled over series.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Tick positions covering ``[low, high]``: multiples of a step of 1, 2 or 5 x 10^k."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


def line_chart(
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    y_label: str,
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 520,
    height: int = 240,
) -> str:
    """An ``<svg>`` element (text) plotting each ``(name, values)`` of ``series`` by epoch."""
    clean = [
        (name, [float(v) if v is not None and math.isfinite(float(v)) else None for v in values])
        for name, values in series
    ]
    finite = [v for _, values in clean for v in values if v is not None]
    n_epochs = max((len(values) for _, values in clean), default=0)
    if not finite or n_epochs == 0:
        return ""
    low = min(finite) if y_min is None else y_min
    high = max(finite) if y_max is None else y_max
    if high <= low:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    if y_min is None:
        low -= pad
    if y_max is None:
        high += pad
    left, right, top = 56, 12, 26
    legend_rows = len(clean)
    bottom = 40 + 16 * legend_rows
    plot_w, plot_h = width - left - right, height - top - 40
    total_h = top + plot_h + bottom

    def x(epoch: int) -> float:  # epoch is 1-based
        span = max(1, n_epochs - 1)
        return left + plot_w * ((epoch - 1) / span if n_epochs > 1 else 0.5)

    def y(value: float) -> float:
        return top + plot_h * (1.0 - (value - low) / (high - low))

    parts = [
        f'<svg class="chart" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {total_h}" width="{width}" height="{total_h}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>',
    ]
    for tick in nice_ticks(low, high):
        if low <= tick <= high:
            ty = y(tick)
            parts.append(
                f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
                f'class="grid"/><text x="{left - 4}" y="{ty + 3:.1f}" class="tick" '
                f'text-anchor="end">{_label(tick)}</text>'
            )
    for tick in nice_ticks(1, n_epochs, min(10, max(1, n_epochs - 1))):
        if tick == int(tick) and 1 <= tick <= n_epochs:
            tx = x(int(tick))
            parts.append(
                f'<text x="{tx:.1f}" y="{top + plot_h + 14}" class="tick" '
                f'text-anchor="middle">{int(tick)}</text>'
            )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 30}" class="axis-label" '
        f'text-anchor="middle">epoch</text>'
        f'<text transform="translate(12,{top + plot_h / 2:.1f}) rotate(-90)" '
        f'class="axis-label" text-anchor="middle">{escape(y_label)}</text>'
    )
    for i, (name, values) in enumerate(clean):
        colour = PALETTE[i % len(PALETTE)]
        # A gap (None) ends a polyline; isolated points get a dot so they stay visible.
        segment: list[str] = []
        segments: list[list[str]] = []
        for epoch, value in enumerate(values, start=1):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(epoch):.1f},{y(value):.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
                    f'points="{" ".join(seg)}"/>'
                )
        ly = top + plot_h + 44 + 16 * i
        parts.append(
            f'<line x1="{left}" x2="{left + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" '
            f'stroke-width="2"/><text x="{left + 24}" y="{ly}" class="legend">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
