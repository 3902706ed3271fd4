"""A small SVG renderer for the HTML report (``night.html_report``): horizontal bars,
stacked bars, lines over days and intervals around a zero line, drawn as inline SVG so the
report opens offline with no chart library and no request to any host.

Every chart is ``role="img"`` with a ``<title>`` and a ``<desc>`` (named by
``aria-labelledby``), and draws only what the table beside it lists: the numbers live in the
table, the picture is for the eye. Series are told apart by colour *and* by dash pattern or
label, never by colour alone. Pure: values in, ``Markup`` out (every text is escaped).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
ROW = 26  # height of one bar's row
LABEL = 230  # room for the labels left of the bars
PALETTE = ("#1f5fa8", "#c4512b", "#2e7d32", "#7b3fa0", "#8a6d00", "#00707a")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
_ids = itertools.count(1)


@dataclass(frozen=True)
class Segment:
    name: str
    value: float


def _frame(title: str, desc: str, height: int, body: str) -> Markup:
    ident = f"chart{next(_ids)}"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'aria-labelledby="{ident}-title {ident}-desc">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(desc)}</desc>{body}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#222">{escape(text)}</text>'
    )


def bar_chart(
    title: str, desc: str, bars: Sequence[tuple[str, float]], value_text: Sequence[str]
) -> Markup:
    """One horizontal bar per (label, value), its value written at its end."""
    top = max((value for _, value in bars), default=0) or 1
    span = WIDTH - LABEL - 90
    parts = []
    for index, ((label, value), shown) in enumerate(zip(bars, value_text, strict=True)):
        y = 8 + index * ROW
        length = max(value, 0) / top * span
        parts.append(_text(LABEL - 6, y + 15, label, "end"))
        parts.append(
            f'<rect x="{LABEL}" y="{y + 3}" width="{length:.1f}" height="{ROW - 8}" '
            f'fill="{PALETTE[0]}"/>'
        )
        parts.append(_text(LABEL + length + 4, y + 15, shown))
    return _frame(title, desc, 16 + len(bars) * ROW, "".join(parts))


def stacked_bars(
    title: str, desc: str, rows: Sequence[tuple[str, Sequence[Segment]]], legend: Sequence[str]
) -> Markup:
    """One bar per row, its segments side by side in ``legend`` order (colour + legend)."""
    top = max((sum(s.value for s in segments) for _, segments in rows), default=0) or 1
    span = WIDTH - LABEL - 20
    parts = []
    for index, name in enumerate(legend):
        key = 10 + index * 130
        parts.append(
            f'<rect x="{key}" y="4" width="12" height="12" fill="{PALETTE[index % len(PALETTE)]}"/>'
        )
        parts.append(_text(key + 16, 14, name))
    for row, (label, segments) in enumerate(rows):
        y = 26 + row * ROW
        parts.append(_text(LABEL - 6, y + 15, label, "end"))
        x = float(LABEL)
        for segment in segments:
            width = max(segment.value, 0) / top * span
            colour = PALETTE[legend.index(segment.name) % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{ROW - 8}" '
                f'fill="{colour}"/>'
            )
            x += width
    return _frame(title, desc, 34 + len(rows) * ROW, "".join(parts))


def line_chart(
    title: str, desc: str, days: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]
) -> Markup:
    """One line per series over ``days`` (each its colour and dash pattern, named in a
    legend), with the first and last day written under the axis."""
    height, left, bottom, right = 240, 50, 200, WIDTH - 20
    top_value = max((v for _, values in series for v in values), default=0) or 1
    step = (right - left) / max(len(days) - 1, 1)

    def y(value: float) -> float:
        return bottom - value / top_value * (bottom - 30)

    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#555"/>',
        f'<line x1="{left}" y1="30" x2="{left}" y2="{bottom}" stroke="#555"/>',
        _text(left - 4, 34, f"{top_value:g}", "end", 11),
        _text(left - 4, bottom, "0", "end", 11),
    ]
    if days:
        parts.append(_text(left, bottom + 16, days[0], "start", 11))
        parts.append(_text(right, bottom + 16, days[-1], "end", 11))
    for index, (name, values) in enumerate(series):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{left + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
        if len(values) == 1:
            parts.append(f'<circle cx="{left}" cy="{y(values[0]):.1f}" r="3" fill="{colour}"/>')
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dashing}/>'
        )
        x = left + 10 + index * 120
        parts.append(
            f'<line x1="{x}" y1="12" x2="{x + 24}" y2="12" stroke="{colour}" '
            f'stroke-width="2"{dashing}/>'
        )
        parts.append(_text(x + 28, 16, name, size=11))
    return _frame(title, desc, height, "".join(parts))


def interval_chart(
    title: str, desc: str, rows: Sequence[tuple[str, float, float, float]], unit: str = "pts"
) -> Markup:
    """Per (label, estimate, low, high): a dot at the estimate and a line across the
    interval, around a dashed zero line (left of it: worse than the control group)."""
    bound = max((max(abs(low), abs(high)) for _, _, low, high in rows), default=0) or 1
    left, right = LABEL + 10, WIDTH - 30
    middle = (left + right) / 2

    def x(value: float) -> float:
        return middle + value / bound * (right - left) / 2

    height = 36 + len(rows) * ROW
    parts = [
        f'<line x1="{middle}" y1="4" x2="{middle}" y2="{height - 20}" stroke="#555" '
        'stroke-dasharray="4 3"/>',
        _text(middle, height - 6, f"0 {unit}", "middle", 11),
        _text(left, height - 6, f"{-bound:+.1f}", "start", 11),
        _text(right, height - 6, f"{bound:+.1f}", "end", 11),
    ]
    for index, (label, estimate, low, high) in enumerate(rows):
        y = 8 + index * ROW + 12
        colour = PALETTE[0] if low > 0 else PALETTE[1] if high < 0 else "#666"
        parts.append(_text(LABEL - 6, y + 4, label, "end"))
        parts.append(
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{colour}" '
            'stroke-width="3"/>'
        )
        parts.append(f'<circle cx="{x(estimate):.1f}" cy="{y}" r="5" fill="{colour}"/>')
    return _frame(title, desc, height, "".join(parts))
