"""Charts as inline SVG, written by hand: no script, no font, no dependency; they print as sharp
as the text around them and inherit the page's font.

Every chart carries a `<title>` and a `<desc>` (read by screen readers) and the figures it
draws are also in a table next to it, so nothing is only in a picture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

Format = Callable[[int], str]

AXIS = "#5b6472"
GRID = "#e3e7ee"
INK = "#1d2733"


@dataclass(frozen=True)
class Series:
    """One line of a line chart (None: no value at that point)."""

    name: str
    color: str
    values: tuple[int | None, ...]
    dashed: bool = False


def nice_ticks(top: int, count: int = 4) -> list[int]:
    """0 and round steps (1, 2, 5 × 10^n) up to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    last = step * math.ceil(top / step)
    return list(range(0, last + 1, step))


def _text_width(text: str, size: float) -> float:
    return len(text) * size * 0.58


def _open(width: int, height: int, title: str, desc: str, ident: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="{ident}-t {ident}-d">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(desc)}</desc>',
    ]


def _y_axis(
    ticks: list[int], scale: Callable[[float], float], left: int, right: int, fmt: Format
) -> list[str]:
    out = []
    for tick in ticks:
        y = scale(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}" '
            'stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10" '
            f'fill="{AXIS}">{escape(fmt(tick))}</text>'
        )
    return out


def bar_chart(
    values: Sequence[int],
    labels: Sequence[str],
    *,
    title: str,
    desc: str,
    ident: str,
    fmt: Format,
    color: str = "#2f5d8a",
    width: int = 506,
    height: int = 200,
) -> str:
    """Vertical bars with a value above each when every value fits; `labels` under the bars
    (thinned to what fits; a label starting a new line of text is drawn on two lines)."""
    left, right, top, bottom = 44, 8, 16, 34
    ticks = nice_ticks(max(values, default=0))
    inner_h = height - top - bottom
    scale = _scale(ticks[-1], top + inner_h, inner_h)
    slot = (width - left - right) / max(1, len(values))
    out = _open(width, height, title, desc, ident)
    out += _y_axis(ticks, scale, left, width - right, fmt)
    show_values = all(_text_width(fmt(v), 9) <= slot - 1 for v in values)
    every = max(1, math.ceil(max((_text_width(lb, 9.5) for lb in labels), default=0) / slot))
    for i, value in enumerate(values):
        x = left + i * slot + slot * 0.15
        y = scale(value)
        out.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{max(0.0, scale(0) - y):.1f}" fill="{color}" rx="1.5">'
            f"<title>{escape(labels[i])}: {escape(fmt(value))}</title></rect>"
        )
        center = left + i * slot + slot / 2
        if show_values and value:
            out.append(
                f'<text x="{center:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="9" '
                f'fill="{INK}">{escape(fmt(value))}</text>'
            )
        if i % every == 0:
            out += _x_label(labels[i], center, height - bottom + 13)
    out.append(
        f'<line x1="{left}" y1="{scale(0):.1f}" x2="{width - right}" y2="{scale(0):.1f}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _x_label(label: str, x: float, y: float) -> list[str]:
    first, _, second = label.partition("\n")
    out = [
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="9.5" '
        f'fill="{AXIS}">{escape(first)}</text>'
    ]
    if second:
        out.append(
            f'<text x="{x:.1f}" y="{y + 11:.1f}" text-anchor="middle" font-size="9.5" '
            f'fill="{AXIS}">{escape(second)}</text>'
        )
    return out


def line_chart(
    series: Sequence[Series],
    labels: Sequence[str],
    *,
    title: str,
    desc: str,
    ident: str,
    fmt: Format,
    width: int = 860,
    height: int = 260,
) -> str:
    """Lines over evenly spaced points, a legend above, the last value at each line's end."""
    legend, legend_height = _legend(series, 56, width - 8)
    left, right, top, bottom = 56, 90, legend_height + 14, 36
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(max(values, default=0))
    inner_h = height - top - bottom
    scale = _scale(ticks[-1], top + inner_h, inner_h)
    count = max(1, len(labels))
    step = (width - left - right) / max(1, count - 1)
    xs = [left + (i * step if count > 1 else (width - left - right) / 2) for i in range(count)]
    out = _open(width, height, title, desc, ident)
    out += _y_axis(ticks, scale, left, width - right, fmt)
    out += legend
    every = max(1, math.ceil(max((_text_width(lb, 9.5) for lb in labels), default=0) / step))
    for i, label in enumerate(labels):
        if i % every == 0 or i == count - 1:
            out += _x_label(label, xs[i], height - bottom + 14)
    ends: list[tuple[float, float]] = []
    for s in series:
        out += _line(s, xs, scale, fmt, ends)
    out.append("</svg>")
    return "\n".join(out)


def _legend(series: Sequence[Series], left: int, right: int) -> tuple[list[str], int]:
    """The legend's elements, wrapped onto as many rows as needed, and its height."""
    out, x, y = [], float(left), 12.0
    for s in series:
        item = 23 + _text_width(s.name, 11) + 20
        if x > left and x + item > right:
            x, y = float(left), y + 18
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 18:.1f}" y2="{y:.1f}" stroke="{s.color}" '
            f'stroke-width="2.5"{dash}/>'
        )
        out.append(
            f'<text x="{x + 23:.1f}" y="{y + 4:.1f}" font-size="11" fill="{INK}">'
            f"{escape(s.name)}</text>"
        )
        x += item
    return out, int(y + 8)


def _line(
    s: Series,
    xs: list[float],
    scale: Callable[[float], float],
    fmt: Format,
    ends: list[tuple[float, float]],
) -> list[str]:
    points = [(xs[i], scale(v), v) for i, v in enumerate(s.values) if v is not None]
    if not points:
        return []
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
    out = [
        f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2.5" '
        f'stroke-linejoin="round"{dash}/>'
    ]
    for x, y, v in points:
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#fff" stroke="{s.color}" '
            f'stroke-width="2"><title>{escape(s.name)}: {escape(fmt(v))}</title></circle>'
        )
    x, y, v = points[-1]
    if any(abs(y - other) < 0.5 for other, _ in ends):
        return out  # another line ends on the same value and already says it
    label_y = y + 3.5
    while any(abs(label_y - placed) < 12 for _, placed in ends):  # keep end labels apart
        label_y -= 12
    ends.append((y, label_y))
    out.append(
        f'<text x="{x + 8:.1f}" y="{label_y:.1f}" font-size="10.5" font-weight="600" '
        f'fill="{s.color}">{escape(fmt(v))}</text>'
    )
    return out


def _scale(top_value: float, baseline: float, height: float) -> Callable[[float], float]:
    def scale(value: float) -> float:
        return baseline - (value / top_value) * height if top_value else baseline

    return scale
