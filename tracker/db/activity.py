"""The activity log: what happened on the tracker, who did it, to which game, and with how many bytes from where.

Rows name users and games rather than pointing at them, so the log stays readable after a build or an
account is gone. Rows older than the retention (MIST_ACTIVITY_DAYS, default 90) are pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracker.db.models import Activity, Build, Game, Install, User
from tracker.db.patches import record_install

SUMMARY_CHARS = 500
KINDS = (
    "login",
    "login_failed",
    "push",
    "install",
    "update",
    "grant",
    "revoke",
    "peer_report",
    "job",
    "job_failed",
    "user",
    "game",
    "build_removed",
    "invitation",
)


@dataclass(frozen=True)
class Event:
    at: float
    kind: str
    user: str = ""
    game: str = ""
    version: str = ""
    summary: str = ""
    bytes_from_peers: int = 0
    bytes_from_seeder: int = 0


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text[:SUMMARY_CHARS])


def record(session: Session, event: Event) -> None:
    if event.kind not in KINDS:
        raise ValueError(f"unknown activity kind {event.kind!r}")
    session.add(
        Activity(
            at=event.at,
            kind=event.kind,
            user=event.user[:64],
            game=event.game[:64],
            version=event.version[:64],
            summary=_clean(event.summary),
            bytes_from_peers=event.bytes_from_peers,
            bytes_from_seeder=event.bytes_from_seeder,
        )
    )


def recent(
    session: Session, user: str = "", game: str = "", kinds: Iterable[str] = (), limit: int = 200, before: float | None = None
) -> list[Event]:
    """The newest events first, optionally only one user's, one game's or some kinds."""
    query = select(Activity)
    if user:
        query = query.where(Activity.user == user)
    if game:
        query = query.where(Activity.game == game)
    wanted = list(kinds)
    if wanted:
        query = query.where(Activity.kind.in_(wanted))
    if before is not None:
        query = query.where(Activity.at < before)
    rows = session.scalars(query.order_by(Activity.at.desc(), Activity.id.desc()).limit(limit))
    return [Event(r.at, r.kind, r.user, r.game, r.version, r.summary, r.bytes_from_peers, r.bytes_from_seeder) for r in rows]


def transfers_since(session: Session, since: float) -> list[tuple[float, int, int]]:
    """(when, bytes from friends, bytes from the seeder) of every finished download since `since`."""
    rows = session.execute(
        select(Activity.at, Activity.bytes_from_peers, Activity.bytes_from_seeder)
        .where(Activity.at >= since, Activity.kind.in_(("install", "update")))
        .order_by(Activity.at)
    )
    return [(float(at), int(peers), int(seeder)) for at, peers, seeder in rows]


def downloads_by_version(session: Session, game: str) -> dict[str, int]:
    """Finished installs and updates of each version of a game that the log still holds."""
    rows = session.execute(
        select(Activity.version, func.count())
        .where(Activity.game == game, Activity.kind.in_(("install", "update")))
        .group_by(Activity.version)
    )
    return {str(version): int(count) for version, count in rows}


def prune(session: Session, now: float, days: float) -> int:
    """Forget events older than `days`; how many went."""
    result = session.execute(delete(Activity).where(Activity.at < now - days * 86400))
    return int(getattr(result, "rowcount", 0) or 0)


def record_download(
    session: Session, user: str, game: str, version: str, digest: str, from_peers: int, from_seeder: int, now: float
) -> None:
    """A friend finished installing or updating to a build: log it (an update if they held another build of the
    game), and note that they hold it now, so the next push makes patches from it."""
    before = session.scalar(
        select(Build.version)
        .join(Install, Install.build_id == Build.id)
        .join(Game, Install.game_id == Game.id)
        .join(User, Install.user_id == User.id)
        .where(User.name == user, Game.slug == game)
    )
    kind = "update" if before is not None and before != version else "install"
    summary = f"from {before}" if kind == "update" else ""
    record(session, Event(now, kind, user, game, version, summary, from_peers, from_seeder))
    record_install(session, user, game, digest)
