"""Server-rendered, accessible SVG charts (no JavaScript): ``role="img"`` with ``<title>`` and ``<desc>``
referenced by ``aria-labelledby``; every chart is shown next to a table with the same numbers. Colours and
fonts come from CSS classes (app/static/css/staff.css), so the CSP needs no inline styles. All text is
escaped here: titles of projects are user input."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from markupsafe import Markup, escape


@dataclass
class Bar:
    label: str
    value: float | int | Fraction
    highlight: bool = False  # e.g. funded
    value_text: str = ""


def _num(value: float | int | Fraction) -> float:
    return float(value)


def bar_chart(
    title: str, desc: str, bars: Sequence[Bar], *, width: int = 720, label_width: int = 260
) -> Markup:
    """A horizontal bar chart, one bar per row, with its value written after the bar."""
    uid = secrets.token_hex(4)
    row_h, pad = 26, 8
    height = max(1, len(bars)) * row_h + 2 * pad
    top = max((_num(b.value) for b in bars), default=0) or 1
    plot = width - label_width - 90
    parts = [
        f'<svg class="chart bar-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="ct-{uid} cd-{uid}" preserveAspectRatio="xMinYMin meet">',
        f'<title id="ct-{uid}">{escape(title)}</title>',
        f'<desc id="cd-{uid}">{escape(desc)}</desc>',
    ]
    for k, bar in enumerate(bars):
        y = pad + k * row_h
        w = max(0.0, _num(bar.value) / top * plot)
        label = bar.label if len(bar.label) <= 38 else bar.label[:37] + "…"
        cls = "bar funded" if bar.highlight else "bar"
        parts.append(
            f'<text class="chart-label" x="{label_width - 8}" y="{y + row_h * 0.65:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        parts.append(
            f'<rect class="{cls}" x="{label_width}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}"/>'
        )
        parts.append(
            f'<text class="chart-value" x="{label_width + w + 6:.1f}" y="{y + row_h * 0.65:.1f}">'
            f"{escape(bar.value_text or str(bar.value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every text part escaped above


def line_chart(
    title: str, desc: str, points: Sequence[tuple[str, int]], *, width: int = 720, height: int = 240
) -> Markup:
    """A line chart over days (labels on the first, middle and last point); a bar per day if only one."""
    uid = secrets.token_hex(4)
    left, right, top_pad, bottom = 48, 16, 16, 36
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    top = max((v for _l, v in points), default=0) or 1
    parts = [
        f'<svg class="chart line-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="ct-{uid} cd-{uid}">',
        f'<title id="ct-{uid}">{escape(title)}</title>',
        f'<desc id="cd-{uid}">{escape(desc)}</desc>',
        f'<line class="axis" x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top_pad}" x2="{left}" y2="{top_pad + plot_h}"/>',
        f'<text class="chart-value" x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{top}</text>',
        f'<text class="chart-value" x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>',
    ]
    n = len(points)
    coords = []
    for k, (_label, value) in enumerate(points):
        x = left + (plot_w * k / (n - 1) if n > 1 else plot_w / 2)
        y = top_pad + plot_h - value / top * plot_h
        coords.append((x, y))
    if n > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline class="line" points="{path}"/>')
    for x, y in coords:
        parts.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
    for k in sorted({0, n // 2, n - 1}) if n else []:
        x, _y = coords[k]
        parts.append(
            f'<text class="chart-label" x="{x:.1f}" y="{height - 10}" text-anchor="middle">'
            f"{escape(points[k][0])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every text part escaped above
