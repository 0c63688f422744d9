"""News from the tracker: "Hollow Knight 1.1 is out, 38 MB update", as the swarm socket's `news` message carries it.

The daemon keeps the last few (in memory) for `mist status` and the app, and
acknowledges each one (`heard`, by its `news_id`), so the tracker stops keeping
it; a message that arrives twice (an acknowledgement lost with a dropped
connection) is kept once. A message that does not parse is dropped, never
shown half-read.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

KEPT = 20
MAX_TEXT = 500
MAX_NOTES = 2000


@dataclass(frozen=True)
class News:
    """One published build, told to us: the line the tracker wrote for what we hold, and when it came."""

    at: float
    game: str
    version: str
    text: str
    bytes: int
    update: bool
    news_id: int | None = None  # what `heard` acknowledges; None from a tracker that keeps no news
    notes: str = ""  # the admin's release notes (the start of them, when long)

    @classmethod
    def parse(cls, message: dict[str, Any], now: float | None = None) -> "News | None":
        """A `news` message of kind `build`, or None for anything else (a newer tracker may send other kinds)."""
        if message.get("op") != "news" or message.get("kind") != "build":
            return None
        game, version, text = message.get("game"), message.get("version"), message.get("text")
        size, update = message.get("bytes"), message.get("update")
        if not (
            isinstance(game, str)
            and isinstance(version, str)
            and isinstance(text, str)
            and 0 < len(text) <= MAX_TEXT
            and text.isprintable()
        ):
            return None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(update, bool):
            return None
        news_id = message.get("news_id")
        if type(news_id) is not int:
            news_id = None
        notes = message.get("notes", "")
        if not isinstance(notes, str) or any(not c.isprintable() and c not in "\n\t" for c in notes):
            notes = ""  # notes that are not plain text are left out, not shown half-read
        return cls(time.time() if now is None else now, game[:64], version[:64], text, size, update, news_id, notes[:MAX_NOTES])

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at,
            "game": self.game,
            "version": self.version,
            "text": self.text,
            "bytes": self.bytes,
            "update": self.update,
            "notes": self.notes,
        }


class Feed:
    """The most recent news, oldest first."""

    def __init__(self, kept: int = KEPT) -> None:
        self._items: deque[News] = deque(maxlen=kept)

    def __repr__(self) -> str:
        return f"Feed({len(self._items)} item(s))"

    def __iter__(self) -> Iterator[News]:
        return iter(self._items)

    def add(self, news: News) -> bool:
        """Keep it; False if the same build's news is here already (told again after a reconnect)."""
        if any((n.game, n.version) == (news.game, news.version) for n in self._items):
            return False
        self._items.append(news)
        return True

    def to_json(self) -> list[dict[str, object]]:
        return [n.to_json() for n in self._items]
