"""Writing to the activity log from the tracker's handlers (the log itself: tracker/db/activity.py)."""

from __future__ import annotations

from tracker.config import TrackerContext
from tracker.db import activity


async def note(
    ctx: TrackerContext,
    kind: str,
    user: str = "",
    game: str = "",
    version: str = "",
    summary: str = "",
    bytes_from_peers: int = 0,
    bytes_from_seeder: int = 0,
) -> None:
    """Add one line to the activity log, stamped with the tracker's clock."""
    event = activity.Event(ctx.now, kind, user, game, version, summary, bytes_from_peers, bytes_from_seeder)
    await ctx.db.run(lambda s: activity.record(s, event))
