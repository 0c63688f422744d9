"""Charts drawn on the server as SVG (pure: numbers in, markup out), so the pages need no chart script.

Colours come from the stylesheet through class names; no inline style, so the site's CSP holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape

from tracker.admin.formatting import human_bytes

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 28


@dataclass(frozen=True)
class Bar:
    label: str
    from_seeder: int
    from_friends: int

    @property
    def total(self) -> int:
        return self.from_seeder + self.from_friends


def buckets(transfers: Iterable[tuple[float, int, int]], now: float, span: float, count: int, label_format: str) -> list[Bar]:
    """Sum (when, from friends, from the seeder) into `count` equal buckets ending at `now`, oldest first."""
    width = span / count
    start = now - span
    seeder = [0] * count
    friends = [0] * count
    for at, peers, from_seeder in transfers:
        if not start <= at <= now:
            continue
        index = min(count - 1, int((at - start) // width))
        seeder[index] += from_seeder
        friends[index] += peers
    labels = [datetime.fromtimestamp(start + (i + 1) * width, timezone.utc).strftime(label_format) for i in range(count)]
    return [Bar(labels[i], seeder[i], friends[i]) for i in range(count)]


def _nice_ceiling(value: int) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(bars: list[Bar], title: str, label_every: int = 1) -> str:
    """Bars of bytes from the seeder (below) and between friends (above), with an axis and a tooltip per bar."""
    top = _nice_ceiling(max((b.total for b in bars), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(bars))
    bar_w = max(2.0, slot * 0.7)
    total_seeder = sum(b.from_seeder for b in bars)
    total_friends = sum(b.from_friends for b in bars)
    summary = f"{title}: {human_bytes(total_seeder)} from the seeder, {human_bytes(total_friends)} between friends"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(summary)}</title>'
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(human_bytes(int(top * fraction)))}</text>"
        )
    for i, bar in enumerate(bars):
        x = LEFT + i * slot + (slot - bar_w) / 2
        h_seeder = plot_h * bar.from_seeder / top
        h_friends = plot_h * bar.from_friends / top
        tip = escape(
            f"{bar.label}: {human_bytes(bar.from_seeder)} from the seeder, {human_bytes(bar.from_friends)} between friends"
        )
        parts.append(f'<g class="bar"><title>{tip}</title>')
        if h_seeder > 0:
            parts.append(
                f'<rect class="seeder" x="{x:.1f}" y="{TOP + plot_h - h_seeder:.1f}" '
                f'width="{bar_w:.1f}" height="{h_seeder:.1f}"/>'
            )
        if h_friends > 0:
            parts.append(
                f'<rect class="friends" x="{x:.1f}" y="{TOP + plot_h - h_seeder - h_friends:.1f}" '
                f'width="{bar_w:.1f}" height="{h_friends:.1f}"/>'
            )
        parts.append("</g>")
        if i % label_every == label_every - 1 or len(bars) <= 8:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
