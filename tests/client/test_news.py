"""The tracker's `news` message as the client reads it (pure): well-formed news is kept, anything else dropped."""

from __future__ import annotations

import pytest

from client.news import KEPT, Feed, News

GOOD = {"op": "news", "kind": "build", "game": "hollow", "title": "Hollow Knight", "version": "1.1",
        "text": "Hollow Knight 1.1 is out, 38 MB update", "bytes": 38_000_000, "update": True}


def test_a_build_s_news_is_read_with_the_time_it_came() -> None:
    news = News.parse(GOOD, now=1000.0)
    assert news == News(1000.0, "hollow", "1.1", "Hollow Knight 1.1 is out, 38 MB update", 38_000_000, True)
    assert news.to_json() == {"at": 1000.0, "game": "hollow", "version": "1.1", "notes": "",
                              "text": "Hollow Knight 1.1 is out, 38 MB update", "bytes": 38_000_000, "update": True}


def test_release_notes_come_with_the_news_when_they_are_plain_text() -> None:
    noted = News.parse({**GOOD, "notes": "Fixes the map.\n\tNew boss."})
    assert noted is not None and noted.notes == "Fixes the map.\n\tNew boss."
    tricked = News.parse({**GOOD, "notes": "clear \x1b[2J screen"})
    assert tricked is not None and tricked.notes == ""  # the news stays; notes that are not plain text do not


@pytest.mark.parametrize("change", [
    {"op": "signal"}, {"kind": "maintenance"}, {"text": ""}, {"text": "x" * 501}, {"text": "out\x1b[2J now"},
    {"text": 5}, {"game": None}, {"bytes": -1}, {"bytes": "38 MB"}, {"bytes": True}, {"update": "yes"},
])
def test_anything_else_is_dropped(change: dict) -> None:
    assert News.parse({**GOOD, **change}) is None


def test_the_feed_keeps_the_most_recent_oldest_first() -> None:
    feed = Feed()
    for i in range(KEPT + 5):
        feed.add(News(float(i), "hollow", str(i), f"Hollow Knight {i} is out", i, True))
    kept = feed.to_json()
    assert len(kept) == KEPT and [n["version"] for n in kept] == [str(i) for i in range(5, KEPT + 5)]
