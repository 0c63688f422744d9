"""Friends as the app shows them: who is online and sharing (the tracker knows), who downloads from us and we
from whom right now (the daemon knows), and the bytes given and received per friend since the first day.

Totals are kept in MIST_HOME/friends.json: what each upload session sends
and what each finished download received, by friend's user name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.durable import write_atomic
from client.swarm import SEEDER

FRIENDS_FILE = "friends.json"


@dataclass
class Totals:
    given: int = 0
    received: int = 0


@dataclass
class Friends:
    home: Path
    totals: dict[str, Totals] = field(default_factory=dict)
    _given_seen: dict[str, int] = field(default_factory=dict)  # the daemon's since-start counts already added

    def __post_init__(self) -> None:
        try:
            body = json.loads((self.home / FRIENDS_FILE).read_text(encoding="utf-8"))
            self.totals = {str(u): Totals(int(t["given"]), int(t["received"])) for u, t in body.items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            self.totals = {}

    def __repr__(self) -> str:
        return f"Friends({len(self.totals)} known)"

    def _of(self, user: str) -> Totals:
        return self.totals.setdefault(user, Totals())

    def given_now(self, given: Mapping[str, int]) -> bool:
        """Fold in the daemon's upload counts (since it started); True if anything changed."""
        changed = False
        for user, total in given.items():
            fresh = total - self._given_seen.get(user, 0)
            if fresh > 0:
                self._of(user).given += fresh
                self._given_seen[user] = total
                changed = True
        return changed

    def received_now(self, received: Mapping[str, int]) -> None:
        """A download ended: add what each friend sent (the server's share is not a friend's)."""
        for user, amount in received.items():
            if user != SEEDER and amount > 0:
                self._of(user).received += amount
        self.save()

    def save(self) -> None:
        body = {u: {"given": t.given, "received": t.received} for u, t in sorted(self.totals.items())}
        write_atomic(self.home / FRIENDS_FILE, json.dumps(body).encode())


def friend_rows(
    online: list[dict[str, Any]],
    me: str,
    totals: Mapping[str, Totals],
    uploading: list[dict[str, Any]],
    downloading: Mapping[str, int],
) -> list[dict[str, Any]]:
    """One row per friend: online ones first (by name), then those we exchanged bytes with before."""
    rows: dict[str, dict[str, Any]] = {}
    for entry in online:
        user = str(entry.get("user", ""))
        if user and user != me:
            rows[user] = {
                "user": user,
                "online": True,
                "sharing": bool(entry.get("sharing")),
                "games": list(entry.get("games", [])),
            }
    for user in totals:
        rows.setdefault(user, {"user": user, "online": False, "sharing": False, "games": []})
    for row in rows.values():
        t = totals.get(row["user"], Totals())
        row["given"], row["received"] = t.given, t.received
        row["downloading_from_you"] = [u["game"] for u in uploading if u["user"] == row["user"]]
        row["sending_you_now"] = downloading.get(row["user"], 0)
    return sorted(rows.values(), key=lambda r: (not r["online"], r["user"]))
