"""Queries only the admin site makes: counts for the dashboard, a game's builds with what friends hold,
grants seen from either side, and the account changes the API has no route for yet."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tracker.db.models import Build, Game, Grant, Install, Patch, User
from tracker.db import queries
from tracker.db.queries import Viewer, _game, _user_id, revoke_sessions
from tracker.errors import Conflict


@dataclass(frozen=True)
class Counts:
    games: int
    builds: int
    users: int
    disabled: int


@dataclass(frozen=True)
class StoredBuild:
    """A build with its manifest, for the figures the game page works out (dedup, patches)."""

    version: str
    digest: str
    manifest: bytes


def counts(session: Session) -> Counts:
    def count(query: object) -> int:
        return int(session.scalar(query) or 0)  # type: ignore[call-overload]  # a select of one count

    return Counts(
        count(select(func.count()).select_from(Game)),
        count(select(func.count()).select_from(Build)),
        count(select(func.count()).select_from(User)),
        count(select(func.count()).select_from(User).where(User.disabled.is_(True))),
    )


def manifests(session: Session, slug: str) -> list[StoredBuild]:
    """Every build of a game with its manifest, oldest first (one game's at a time)."""
    game = _game(session, slug, Viewer("", True))
    rows = session.execute(
        select(Build.version, Build.manifest_digest, Build.manifest)
        .where(Build.game_id == game.id)
        .order_by(Build.created_at, Build.id)
    )
    return [StoredBuild(v, d, m) for v, d, m in rows]


def installs_by_version(session: Session, slug: str) -> dict[str, int]:
    """How many friends last said they hold each version."""
    game = _game(session, slug, Viewer("", True))
    rows = session.execute(
        select(Build.version, func.count())
        .join(Install, Install.build_id == Build.id)
        .where(Install.game_id == game.id)
        .group_by(Build.version)
    )
    return {str(v): int(n) for v, n in rows}


def granted_users(session: Session, slug: str) -> list[str]:
    game = _game(session, slug, Viewer("", True))
    rows = session.scalars(
        select(User.name).join(Grant, Grant.user_id == User.id).where(Grant.game_id == game.id).order_by(User.name)
    )
    return list(rows)


def user_grants(session: Session, name: str) -> list[str]:
    user_id = _user_id(session, name)
    rows = session.scalars(
        select(Game.slug).join(Grant, Grant.game_id == Game.id).where(Grant.user_id == user_id).order_by(Game.slug)
    )
    return list(rows)


def private_games(session: Session) -> list[tuple[str, str]]:
    return [
        (slug, title)
        for slug, title in session.execute(select(Game.slug, Game.title).where(Game.private.is_(True)).order_by(Game.slug))
    ]


def delete_game(session: Session, slug: str) -> int:
    """Remove a game with its builds, grants and install records; how many builds went (the GC frees their data)."""
    game = _game(session, slug, Viewer("", True))
    builds = int(session.scalar(select(func.count()).select_from(Build).where(Build.game_id == game.id)) or 0)
    for table in (Install, Grant, Build):
        session.execute(delete(table).where(table.game_id == game.id))
    session.execute(delete(Game).where(Game.id == game.id))
    return builds


def _admins_left(session: Session, without: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(User).where(User.is_admin.is_(True), User.disabled.is_(False), User.id != without)
        )
        or 0
    )


def keep_an_admin(session: Session, name: str) -> None:
    """Refuse to disable or demote the last enabled admin (nobody could sign in to undo it)."""
    user_id = _user_id(session, name)
    is_admin = session.scalar(select(User.is_admin).where(User.id == user_id))
    if is_admin and not _admins_left(session, user_id):
        raise Conflict(f"{name} is the only enabled admin; make another account an admin first")


def disable_user(session: Session, name: str, now: float) -> None:
    """Disable an account (its sessions end), unless it is the last enabled admin."""
    keep_an_admin(session, name)
    queries.disable_user(session, name, now)


def set_admin(session: Session, name: str, is_admin: bool, now: float) -> bool:
    """Make an account an admin or take its rights; its sessions end (their scope changed). False if no change."""
    if not is_admin:
        keep_an_admin(session, name)
    user_id = _user_id(session, name)
    changed = session.execute(update(User).where(User.id == user_id, User.is_admin.is_(not is_admin)).values(is_admin=is_admin))
    if not getattr(changed, "rowcount", 0):
        return False
    revoke_sessions(session, user_id, now)
    return True


def known_objects(session: Session) -> tuple[set[str], set[str]]:
    """(manifest objects, patch objects) the catalog names, to tell them from chunks in the store."""
    manifests = set(session.scalars(select(Build.manifest_digest)))
    patches = {p for p in session.scalars(select(Patch.object_sha).where(Patch.object_sha.is_not(None))) if p}
    return manifests, patches


def latest_builds(session: Session, limit: int = 8) -> list[tuple[str, str, str, int, object]]:
    """(game slug, title, version, size, created) of the newest builds."""
    rows = session.execute(
        select(Game.slug, Game.title, Build.version, Build.total_size, Build.created_at)
        .join(Game, Build.game_id == Game.id)
        .order_by(Build.created_at.desc(), Build.id.desc())
        .limit(limit)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]  # rows of the five columns selected
