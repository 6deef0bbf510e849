"""Charts drawn by the server as SVG, for the insights pages (no JavaScript, no CDN).

Readable without colour: every bar carries its number as text, a second series is hatched as
well as coloured and named in a legend, and the page shows the numbers again in a table. All
text is XML-escaped, so the result may be marked safe. Colours are presentation attributes,
which the Content-Security-Policy allows (a style= attribute it would refuse).
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Sequence

from django.utils.safestring import SafeString, mark_safe

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
WIDTH = 640
ROW = 22
BAR = 14
LABEL_W = 190
VALUE_W = 80
TOP = 8
SERIES = (("#2f6fb0", False), ("#d9822b", True))


def duration_text(seconds: float | None) -> str:
    """3600 → "1h", 5400 → "1h 30m", 90000 → "1d 1h"; None → a dash."""
    if seconds is None:
        return "\N{EN DASH}"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def number_text(value: float | None) -> str:
    if value is None:
        return "\N{EN DASH}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Sequence[float | None]]],
    *,
    series: Sequence[str] = ("",),
    fmt: Callable[[float | None], str] = number_text,
) -> SafeString:
    """Horizontal bars, one group per row, one bar per series, each with its value written."""
    n = max(len(series), 1)
    group_h = ROW * n + 6
    legend_h = 22 if len(series) > 1 else 0
    height = TOP + legend_h + max(len(rows), 1) * group_h + 8
    values = [v for _, vs in rows for v in vs if v is not None]
    top = max(values) if values else 0
    span = WIDTH - LABEL_W - VALUE_W
    # Each chart its own pattern id: ids must be unique in the page.
    hatch = f"hatch-{uuid.uuid4().hex[:8]}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f' aria-label="{_e(title)}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}"'
        f' font-family="{FONT}" font-size="12">',
        f"<title>{_e(title)}</title>",
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse"'
        ' patternTransform="rotate(45)"><rect width="6" height="6" fill="#d9822b"/>'
        '<path d="M0 0V6" stroke="#ffffff" stroke-width="2"/></pattern></defs>',
    ]
    if len(series) > 1:
        x = LABEL_W
        for index, name in enumerate(series):
            colour, hatched = SERIES[index % len(SERIES)]
            fill = f"url(#{hatch})" if hatched else colour
            out.append(
                f'<rect x="{x}" y="{TOP}" width="14" height="12" fill="{fill}"'
                f' stroke="#333333" stroke-width="0.5"/>'
                f'<text x="{x + 20}" y="{TOP + 10}" fill="#222222">{_e(name)}</text>'
            )
            x += 30 + 7 * len(name)
    if not rows:
        out.append(
            f'<text x="{LABEL_W}" y="{TOP + legend_h + 14}" fill="#555555">Nothing in this'
            " period.</text>"
        )
    for index, (label, vs) in enumerate(rows):
        y0 = TOP + legend_h + index * group_h
        out.append(
            f'<g class="chart-row"><text x="{LABEL_W - 8}" y="{y0 + ROW * n / 2 + 4}"'
            f' text-anchor="end" fill="#222222">{_e(_short(label))}<title>{_e(label)}</title>'
            "</text>"
        )
        for s, value in enumerate(vs):
            colour, hatched = SERIES[s % len(SERIES)]
            fill = f"url(#{hatch})" if hatched else colour
            y = y0 + s * ROW + (ROW - BAR) / 2
            w = 0.0 if value is None or top <= 0 else max(value / top * span, 1.0)
            name = f"{series[s]}: " if series[s] else ""
            out.append(
                f'<rect class="chart-bar" x="{LABEL_W}" y="{y:.1f}" width="{w:.1f}"'
                f' height="{BAR}" fill="{fill}"><title>{_e(label)} {_e(name)}'
                f"{_e(fmt(value))}</title></rect>"
                f'<text class="chart-value" x="{LABEL_W + w + 6:.1f}" y="{y + BAR - 3:.1f}"'
                f' fill="#222222">{_e(fmt(value))}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))
