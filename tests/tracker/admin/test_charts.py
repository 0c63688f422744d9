"""The server-drawn bytes chart: bucketing, scale, and markup that a strict CSP allows."""

from __future__ import annotations

import re

import pytest

from tracker.admin.charts import Bar, _nice_ceiling, buckets, stacked_bars

pytestmark = pytest.mark.same_on_every_backend
NOW = 1_800_000_000.0


def test_transfers_fall_into_their_buckets_and_none_outside_is_counted() -> None:
    transfers = [(NOW - 3600 * 23.5, 10, 1), (NOW - 10, 5, 7), (NOW - 5, 1, 1), (NOW - 90000, 99, 99), (NOW + 5, 99, 99)]
    bars = buckets(transfers, NOW, 86400, 24, "%H:00")
    assert len(bars) == 24
    assert (bars[0].from_friends, bars[0].from_seeder) == (10, 1)
    assert (bars[-1].from_friends, bars[-1].from_seeder) == (6, 8)
    assert sum(b.total for b in bars) == 25


@pytest.mark.parametrize("value, top", [(0, 1), (1, 1), (7, 10), (10, 10), (11, 20), (1999, 2000), (3_500_000, 5_000_000)])
def test_the_axis_ends_at_a_round_number(value: int, top: int) -> None:
    assert _nice_ceiling(value) == top


def test_the_svg_has_no_inline_style_and_says_its_totals_in_words() -> None:
    svg = stacked_bars([Bar("Mon", 3_000_000, 0), Bar("<Tue>", 0, 2_000_000)], "Last 7 days")
    assert "style=" not in svg and "<script" not in svg
    assert "&lt;Tue&gt;" in svg and "<Tue>" not in svg  # labels are escaped
    assert 'aria-label="Last 7 days: 3.0 MB from the seeder, 2.0 MB between friends"' in svg
    heights = [float(h) for h in re.findall(r'class="(?:seeder|friends)"[^>]* height="([\d.]+)"', svg)]
    assert len(heights) == 2 and abs(heights[0] / heights[1] - 1.5) < 0.01  # to scale
