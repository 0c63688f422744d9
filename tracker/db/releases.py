"""Queries for announcing a published build: the game's title and privacy, the build before it, who may read it,
and the news each friend's daemon has not heard yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from tracker.db.models import Build, Game, Grant, PendingNews, User
from tracker.db.patches import StoredManifest
from tracker.db.queries import Viewer, _game, readable_builds


@dataclass(frozen=True)
class ReleaseFacts:
    title: str
    private: bool
    previous: StoredManifest | None  # the build of the game pushed just before this one
    notes: str = ""  # the build's release notes


def release_facts(session: Session, slug: str, version: str) -> ReleaseFacts:
    game = _game(session, slug, Viewer("", True))
    target_id = session.scalar(select(Build.id).where(Build.game_id == game.id, Build.version == version))
    before = (
        session.scalar(select(Build).where(Build.game_id == game.id, Build.id < target_id).order_by(Build.id.desc()).limit(1))
        if target_id is not None
        else None
    )
    previous = StoredManifest(slug, before.version, before.manifest_digest, before.manifest) if before else None
    notes = session.scalar(select(Build.notes).where(Build.id == target_id)) if target_id is not None else ""
    return ReleaseFacts(game.title, game.private, previous, notes or "")


def readers(session: Session, digest: str, viewers: Iterable[Viewer]) -> set[Viewer]:
    """The viewers among these who may read the build, by the catalog's own rule (grants, disabled accounts)."""
    return {v for v in set(viewers) if digest in readable_builds(session, [digest], v)}


@dataclass(frozen=True)
class Unheard:
    """A build a friend has not heard of: the row to acknowledge, and the build to size it from."""

    id: int
    game: str
    title: str
    version: str
    digest: str
    private: bool
    manifest: bytes
    notes: str = ""


def queue_news(session: Session, slug: str, version: str, now: float) -> int:
    """Keep news of this build for every account that may read it (replacing older news of the game); how many."""
    game = _game(session, slug, Viewer("", True))
    build_id = session.scalar(select(Build.id).where(Build.game_id == game.id, Build.version == version))
    if build_id is None:
        return 0
    readable: ColumnElement[bool] = User.disabled.is_(False)
    if game.private:
        readable = and_(
            readable, or_(User.is_admin.is_(True), User.id.in_(select(Grant.user_id).where(Grant.game_id == game.id)))
        )
    readers = session.scalars(select(User.id).where(readable)).all()
    session.execute(delete(PendingNews).where(PendingNews.game_id == game.id, PendingNews.user_id.in_(readers)))
    session.add_all(PendingNews(user_id=u, game_id=game.id, build_id=build_id, created_at=now, ready=False) for u in readers)
    return len(readers)


def mark_ready(session: Session, slug: str | None = None, version: str | None = None) -> None:
    """The news of a build may be told now (its patches are made); with no build, all news (a tracker restart)."""
    query = update(PendingNews).values(ready=True)
    if slug is not None:
        build_ids = select(Build.id).join(Game, Build.game_id == Game.id).where(Game.slug == slug, Build.version == version)
        query = query.where(PendingNews.build_id.in_(build_ids))
    session.execute(query)


def unheard(session: Session, user: str, slug: str | None = None) -> list[Unheard]:
    """The news this user's daemon has not acknowledged, ready to tell (still readable: grants change)."""
    rows = session.execute(
        select(
            PendingNews.id, Game.slug, Game.title, Build.version, Build.manifest_digest, Game.private, Build.manifest, Build.notes
        )
        .join(User, PendingNews.user_id == User.id)
        .join(Game, PendingNews.game_id == Game.id)
        .join(Build, PendingNews.build_id == Build.id)
        .where(User.name == user, PendingNews.ready.is_(True), *([Game.slug == slug] if slug else []))
        .order_by(PendingNews.id)
    ).all()
    viewer = Viewer(user, bool(session.scalar(select(User.is_admin).where(User.name == user))))
    allowed = readable_builds(session, [r[4] for r in rows], viewer)
    return [Unheard(*r) for r in rows if r[4] in allowed]


def heard(session: Session, user: str, ids: Iterable[int]) -> int:
    """The daemon heard these: forget them; how many were this user's."""
    user_id = session.scalar(select(User.id).where(User.name == user))
    result = session.execute(delete(PendingNews).where(PendingNews.user_id == user_id, PendingNews.id.in_(list(ids))))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]  # a DELETE's result is a CursorResult
