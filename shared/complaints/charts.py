"""Charts as inline SVG, drawn on the server: no script, no external asset, so a report renders
the same in a browser, a headless browser, a saved file and a mail client that shows SVG.

Each chart carries its numbers as text (and each bar or point its value in ``data-value``), so
what a reader sees is what a test can check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
BRAND, GOOD, BAD, AMBER = "#0b5394", "#1e7b34", "#b42318", "#c77700"
FONT = "-apple-system,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',Helvetica,Arial,sans-serif"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as the reader sees it
    color: str = BRAND


def _svg(width: int, height: int, title: str, body: str, kind: str) -> Markup:
    return Markup(  # noqa: S704 - every text in ``body`` and ``title`` went through escape()
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}" font-size="12" style="max-width:{width}px"><title>{escape(title)}</title>'
        f"{body}</svg>")


def text_width(text: str, size: float = 12) -> float:
    """About how wide ``text`` is drawn: CJK characters are square, Latin ones a little over half."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def _clip(text: str, width: float, size: float = 12) -> str:
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def bar_chart(bars: Sequence[Bar], *, title: str, max_value: float | None = None, width: int = 440,
              label_width: int = 128, target: float | None = None, target_text: str = "") -> Markup:
    """Horizontal bars, one per row, each with its label and its value. ``max_value`` fixes the
    scale (1.0 for rates); ``target`` draws a dashed line at that value."""
    row, top = 24, 8
    right = max(40, int(max([text_width(b.text) for b in bars] + [0])) + 14)
    height = top * 2 + row * max(1, len(bars)) + (14 if target is not None else 0)
    scale_max = max_value if max_value is not None else max([b.value for b in bars] + [0]) or 1
    span = width - label_width - right
    parts: list[str] = [f'<line x1="{label_width}" y1="{top - 4}" x2="{label_width}" '
                        f'y2="{top + row * len(bars)}" stroke="{GRID}"/>']
    for i, bar in enumerate(bars):
        y = top + i * row
        length = 0.0 if scale_max <= 0 else max(0.0, min(1.0, bar.value / scale_max)) * span
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end" fill="{INK}">{escape(_clip(bar.label, label_width - 12))}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 4}" width="{length:.1f}" height="15" rx="2" fill="{bar.color}" '
            f'data-label="{escape(bar.label)}" data-value="{bar.value:g}"/>'
            f'<text class="value" x="{label_width + length + 6:.1f}" y="{y + 15}" fill="{INK}">{escape(bar.text)}</text>')
    if target is not None and scale_max > 0:
        x = label_width + min(1.0, target / scale_max) * span
        bottom = top + row * len(bars)
        parts.append(f'<line class="target" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="{AMBER}" '
                     f'stroke-dasharray="4 3" data-value="{target:g}"/>'
                     f'<text x="{x:.1f}" y="{bottom + 12}" text-anchor="middle" fill="{AMBER}" font-size="11">'
                     f"{escape(target_text)}</text>")
    return _svg(width, height, title, "".join(parts), "bars")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None: no point (nothing to measure that month)
    color: str
    texts: Sequence[str]  # each value as the reader sees it


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, y_min: float = 0,
               y_max: float = 100, target: float | None = None, target_text: str = "", width: int = 960,
               height: int = 250) -> Markup:
    """Lines over months on a fixed scale (scores and rates in %), each point labelled with its value;
    a gap where a month has no value; an optional dashed target line; a legend."""
    left, right, top, bottom = 36, 12, 28, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(labels))

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, y_min), y_max) - y_min) / (y_max - y_min))

    parts: list[str] = []
    tick = 10 if y_max - y_min > 40 else 5
    for k in range(int((y_max - y_min) // tick) + 1):
        value = y_min + tick * k
        parts.append(f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" stroke="{GRID}"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" fill="{MUTED}" font-size="11">'
                     f"{value:g}</text>")
    for i, label in enumerate(labels):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" text-anchor="middle" fill="{MUTED}" font-size="11">'
                     f"{escape(label)}</text>")
    if target is not None:
        parts.append(f'<line class="target" x1="{left}" y1="{y(target):.1f}" x2="{width - right}" y2="{y(target):.1f}" '
                     f'stroke="{AMBER}" stroke-dasharray="5 4" data-value="{target:g}"/>')
    legend_x = left
    for s in series:
        segment: list[str] = []
        runs: list[list[str]] = [segment]
        for i, v in enumerate(s.values):
            if v is None:
                segment = []
                runs.append(segment)
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.color}" stroke-width="2"/>')
        for i, v in enumerate(s.values):
            if v is not None:
                parts.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{s.color}" '
                             f'data-series="{escape(s.name)}" data-label="{escape(labels[i])}" data-value="{v:g}"/>'
                             f'<text x="{x(i):.1f}" y="{y(v) - 7:.1f}" text-anchor="middle" fill="{s.color}" '
                             f'font-size="10">{escape(s.texts[i])}</text>')
        parts.append(f'<rect x="{legend_x}" y="8" width="12" height="3" fill="{s.color}"/>'
                     f'<text x="{legend_x + 16}" y="13" fill="{INK}" font-size="11">{escape(s.name)}</text>')
        legend_x += 28 + int(text_width(s.name, 11))
    if target is not None:  # in the legend, not on the line: the points near it keep their labels
        parts.append(f'<line x1="{legend_x}" y1="9.5" x2="{legend_x + 14}" y2="9.5" stroke="{AMBER}" '
                     f'stroke-dasharray="4 3"/><text x="{legend_x + 18}" y="13" fill="{AMBER}" font-size="11">'
                     f"{escape(target_text)}</text>")
    return _svg(width, height, title, "".join(parts), "lines")


def column_chart(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 960, height: int = 170,
                 color: str = BRAND) -> Markup:
    """Columns over months, each with its value on top."""
    left, right, top, bottom = 12, 12, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(labels))
    peak = max([*values, 0]) or 1
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{GRID}"/>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / peak
        x = left + step * i + step * 0.2
        parts.append(f'<rect class="column" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.6:.1f}" '
                     f'height="{h:.1f}" rx="2" fill="{color}" data-label="{escape(label)}" data-value="{value:g}"/>'
                     f'<text x="{x + step * 0.3:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle" fill="{INK}" '
                     f'font-size="11">{value:,.0f}</text>'
                     f'<text x="{x + step * 0.3:.1f}" y="{height - 10}" text-anchor="middle" fill="{MUTED}" '
                     f'font-size="11">{escape(label)}</text>')
    return _svg(width, height, title, "".join(parts), "columns")
