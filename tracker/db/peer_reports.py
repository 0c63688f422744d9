"""Reports that a peer sent a friend a corrupt chunk, and what the admin reads of them (issue 5)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.db.models import Build, PeerReport, User
from tracker.db.queries import Viewer, _game
from tracker.errors import NotFound

DEDUPE_SECONDS = 3600.0
REPORTS_PER_HOUR = 20  # from one reporter, about any peers and builds: a real download meets a handful
REASON_CHARS = 500


@dataclass(frozen=True)
class ReportRow:
    reported_at: float
    reporter: str
    peer_user: str
    game: str
    digest: str
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "reported_at": self.reported_at,
            "reporter": self.reporter,
            "peer_user": self.peer_user,
            "game": self.game,
            "digest": self.digest,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PeerSummary:
    """How often one peer was reported, by how many different friends, and when last."""

    peer_user: str
    reports: int
    reporters: int
    last_reported_at: float

    def to_json(self) -> dict[str, object]:
        return {
            "peer_user": self.peer_user,
            "reports": self.reports,
            "reporters": self.reporters,
            "last_reported_at": self.last_reported_at,
        }


def _clean(reason: str) -> str:
    """At most REASON_CHARS characters, without control characters: the admin reads it in a terminal."""
    return "".join(c if c.isprintable() else " " for c in reason[:REASON_CHARS])


def record_report(
    session: Session,
    *,
    reporter: str,
    peer_user: str,
    game: str,
    build: str,
    reason: str,
    now: float,
) -> bool:
    """Store that `peer_user` sent `reporter` a corrupt chunk of `game`'s build whose manifest digest is `build`.

    True if stored, False if dropped as a repeat.

    A hostile client must not be able to flood the table, so a report is stored only when it names a real
    account as the peer and a build of a game the reporter may see (else NotFound, worded the same whether
    the game is absent or private), and only once per reporter, peer and build in any DEDUPE_SECONDS (an
    hour): a repeat inside the hour from the last stored one is dropped, so each triple adds at most 24
    rows a day. The check and the insert are not one atomic step, so repeats sent at the same instant (over
    several sockets) can each store a row: a few extra, never a flood. Beyond that, one reporter's reports
    are stored at most REPORTS_PER_HOUR an hour, whatever they name. The reason is cut to REASON_CHARS
    characters and its control characters become spaces.
    """
    who = session.scalar(select(User.is_admin).where(User.name == reporter))
    if who is None:
        raise NotFound(f"no user {reporter!r}; the report was not stored")
    found = _game(session, game, Viewer(reporter, bool(who)))
    if session.scalar(select(Build.id).where(Build.game_id == found.id, Build.manifest_digest == build)) is None:
        raise NotFound(f"{game} has no build with manifest {build[:16]!r}; report the build the chunk came from")
    if session.scalar(select(User.id).where(User.name == peer_user)) is None:
        raise NotFound(f"no user {peer_user!r}; report the account name the tracker gave for the peer")
    repeat = session.scalar(
        select(PeerReport.id)
        .where(
            PeerReport.peer_user == peer_user,
            PeerReport.reporter == reporter,
            PeerReport.build_digest == build,
            PeerReport.reported_at > now - DEDUPE_SECONDS,
        )
        .limit(1)
    )
    if repeat is not None:
        return False
    recent = session.scalar(
        select(func.count())
        .select_from(PeerReport)
        .where(PeerReport.reporter == reporter, PeerReport.reported_at > now - DEDUPE_SECONDS)
    )
    if (recent or 0) >= REPORTS_PER_HOUR:
        return False
    session.add(
        PeerReport(reported_at=now, reporter=reporter, peer_user=peer_user, build_digest=build, game=game, reason=_clean(reason))
    )
    return True


def recent_reports(session: Session, limit: int = 100) -> list[ReportRow]:
    """The newest reports first."""
    rows = session.scalars(select(PeerReport).order_by(PeerReport.reported_at.desc(), PeerReport.id.desc()).limit(limit))
    return [ReportRow(r.reported_at, r.reporter, r.peer_user, r.game, r.build_digest, r.reason) for r in rows]


def reports_by_peer(session: Session) -> list[PeerSummary]:
    """One line per reported peer, the most reported first: many reporters point at the peer, one at the reporter."""
    rows = session.execute(
        select(PeerReport.peer_user, func.count(), func.count(PeerReport.reporter.distinct()), func.max(PeerReport.reported_at))
        .group_by(PeerReport.peer_user)
        .order_by(func.count().desc(), PeerReport.peer_user)
    )
    return [PeerSummary(peer, int(count), int(reporters), float(last)) for peer, count, reporters, last in rows]
