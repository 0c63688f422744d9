"""Every query the tracker makes, as plain functions over a Session.

Handlers call these through `Database.run`, so SQLAlchemy stays under tracker/db/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, func, or_, select, true as sa_true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.orm import Session, defer

from tracker.db.models import Build, Game, Grant, RefreshToken, User
from tracker.errors import Conflict, NotFound


def _changed(result: Result[Any]) -> bool:
    """Whether an UPDATE changed exactly one row (the database counts; the ORM's view may be stale)."""
    return cast(CursorResult[Any], result).rowcount == 1


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class UserRow:
    name: str
    password_hash: str
    is_admin: bool
    disabled: bool
    generation: int = 0


@dataclass(frozen=True)
class BuildRow:
    game: str
    version: str
    manifest_digest: str
    total_size: int
    file_count: int
    chunk_count: int
    stored_size: int
    created_at: datetime
    notes: str = ""
    launch: str = ""  # the command Play runs: the build's own, else the game's
    own_launch: bool = False  # whether `launch` is the build's own (False: the game's, or none)
    news_status: str = ""  # its Discord post: "" (none was due), "posted", or why it was not

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "digest": self.manifest_digest,
            "total_size": self.total_size,
            "files": self.file_count,
            "chunks": self.chunk_count,
            "stored_size": self.stored_size,
            "created_at": self.created_at.isoformat() + "Z",
            "notes": self.notes,
            "launch": self.launch,
            "launch_from": "build" if self.own_launch else "game" if self.launch else "",
            "news_status": self.news_status,
        }


@dataclass(frozen=True)
class Viewer:
    """Who is looking: admins see every game, users public ones and those granted to them."""

    user: str
    is_admin: bool


@dataclass(frozen=True)
class GameRow:
    slug: str
    title: str
    private: bool
    builds: tuple[BuildRow, ...]
    description: str = ""
    header_image: str = ""
    steam_app_id: int | None = None
    overrides: tuple[str, ...] = ()
    steam_error: str = ""
    launch: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "slug": self.slug,
            "title": self.title,
            "private": self.private,
            "description": self.description,
            "header_image": self.header_image,
            "steam_app_id": self.steam_app_id,
            "overrides": list(self.overrides),
            "steam_error": self.steam_error,
            "launch": self.launch,
            "latest": self.builds[-1].version if self.builds else None,
            "builds": [b.to_json() for b in self.builds],
        }


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def add_user(session: Session, name: str, password_hash: str, is_admin: bool) -> None:
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists; pick another name")
    session.add(User(name=name, password_hash=password_hash, is_admin=is_admin, disabled=False, created_at=_now()))


def get_user(session: Session, name: str) -> UserRow | None:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        return None
    return _user_row(user)


def _user_row(user: User) -> UserRow:
    return UserRow(user.name, user.password_hash, user.is_admin, user.disabled, user.generation)


def set_password_hash(session: Session, name: str, password_hash: str) -> None:
    session.execute(update(User).where(User.name == name).values(password_hash=password_hash))


def list_users(session: Session) -> list[dict[str, object]]:
    return [
        {"name": u.name, "admin": u.is_admin, "disabled": u.disabled, "created_at": u.created_at.isoformat() + "Z"}
        for u in session.scalars(select(User).order_by(User.name))
    ]


def _user_id(session: Session, name: str) -> int:
    user_id = session.scalar(select(User.id).where(User.name == name))
    if user_id is None:
        raise NotFound(f"no user {name!r}", {"missing": "user"})
    return user_id


def revoke_sessions(session: Session, user_id: int, now: float) -> None:
    """End every session of the user now: refresh tokens are revoked, and the generation that access tokens and
    tickets name moves on, so those already issued are refused at their next use (tracker/sessions.py)."""
    session.execute(update(RefreshToken).where(RefreshToken.user_id == user_id).values(revoked=True))
    session.execute(update(User).where(User.id == user_id).values(generation=User.generation + 1, generation_changed_at=now))


def change_password(session: Session, name: str, password_hash: str, now: float) -> None:
    user_id = _user_id(session, name)
    session.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
    revoke_sessions(session, user_id, now)


def disable_user(session: Session, name: str, now: float) -> None:
    user_id = _user_id(session, name)
    session.execute(update(User).where(User.id == user_id).values(disabled=True))
    revoke_sessions(session, user_id, now)


def enable_user(session: Session, name: str) -> bool:
    """Let a disabled account log in again; False if it was not disabled. Its ended sessions stay ended."""
    user_id = _user_id(session, name)
    return _changed(session.execute(update(User).where(User.id == user_id, User.disabled.is_(True)).values(disabled=False)))


def generations_changed_since(session: Session, since: float) -> list[tuple[str, int, bool]]:
    """(name, generation, disabled) of the accounts whose sessions were ended after `since` (unix seconds)."""
    rows = session.execute(
        select(User.name, User.generation, User.disabled).where(User.generation_changed_at > since, User.generation > 0)
    ).all()
    return [(name, generation, disabled) for name, generation, disabled in rows]


def store_refresh_token(session: Session, name: str, token_hash: str, expires_at: datetime) -> None:
    user_id = session.scalar(select(User.id).where(User.name == name))
    session.add(RefreshToken(user_id=user_id, token_hash=token_hash, expires_at=expires_at, revoked=False))


@dataclass(frozen=True)
class Redeemed:
    """A refresh token's use: the account it belongs to (None: unknown), and whether this call consumed it."""

    user: UserRow | None
    consumed: bool


def use_refresh_token(session: Session, token_hash: str, now: datetime) -> Redeemed:
    """Consume a refresh token (they rotate on use). One conditional update does it, so of several requests
    racing with one token exactly one consumes it; the others, and revoked or expired tokens, do not."""
    row = session.execute(
        select(RefreshToken.id, User).join(User, RefreshToken.user_id == User.id).where(RefreshToken.token_hash == token_hash)
    ).first()
    if row is None:
        return Redeemed(None, False)
    token_id, user = row
    consumed = _changed(
        session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.revoked.is_(False), RefreshToken.expires_at > now)
            .values(revoked=True)
        )
    )
    return Redeemed(_user_row(user), consumed)


def add_game(session: Session, slug: str, title: str, private: bool = False) -> None:
    if session.scalar(select(Game.id).where(Game.slug == slug)) is not None:
        raise Conflict(f"game {slug!r} already exists")
    session.add(Game(slug=slug, title=title, private=private, created_at=_now()))


def _visible(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on games that `viewer` may see."""
    if viewer.is_admin:
        return sa_true()
    granted = select(Grant.game_id).join(User, Grant.user_id == User.id).where(User.name == viewer.user)
    return or_(Game.private.is_(False), Game.id.in_(granted))


def _game(session: Session, slug: str, viewer: Viewer) -> Game:
    """The game, or NotFound also when it exists but is private to others: its existence must not leak."""
    game = session.scalar(select(Game).where(Game.slug == slug, _visible(viewer)))
    if game is None:
        raise NotFound(f"no game {slug!r}", {"missing": "game", "game": slug})
    return game


def set_grant(session: Session, user: str, slug: str, granted: bool) -> None:
    user_id = _user_id(session, user)
    game = _game(session, slug, Viewer("", True))
    exists = session.get(Grant, (user_id, game.id))
    if granted and exists is None:
        session.add(Grant(user_id=user_id, game_id=game.id))
    elif not granted and exists is not None:
        session.delete(exists)


def _build_row(slug: str, b: Build, game_launch: str = "") -> BuildRow:
    return BuildRow(
        slug,
        b.version,
        b.manifest_digest,
        b.total_size,
        b.file_count,
        b.chunk_count,
        b.stored_size,
        b.created_at,
        b.notes,
        b.launch or game_launch,
        bool(b.launch),
        b.news_status,
    )


def list_games(session: Session, viewer: Viewer) -> list[GameRow]:
    games = session.scalars(select(Game).where(_visible(viewer)).order_by(Game.slug)).all()
    slugs = {g.id: g.slug for g in games}
    launches = {g.id: g.launch for g in games}
    builds = session.scalars(
        select(Build).options(defer(Build.manifest)).where(Build.game_id.in_(slugs)).order_by(Build.created_at, Build.id)
    ).all()
    by_game: dict[int, list[BuildRow]] = {}
    for b in builds:
        by_game.setdefault(b.game_id, []).append(_build_row(slugs[b.game_id], b, launches[b.game_id]))
    return [_game_row(g, tuple(by_game.get(g.id, []))) for g in games]


def get_game(session: Session, slug: str, viewer: Viewer) -> GameRow:
    game = _game(session, slug, viewer)
    builds = session.scalars(
        select(Build).options(defer(Build.manifest)).where(Build.game_id == game.id).order_by(Build.created_at, Build.id)
    ).all()
    return _game_row(game, tuple(_build_row(slug, b, game.launch) for b in builds))


def _game_row(game: Game, builds: tuple[BuildRow, ...]) -> GameRow:
    return GameRow(
        game.slug,
        game.title,
        game.private,
        builds,
        game.description,
        game.header_image,
        game.steam_app_id,
        tuple(f for f in game.overrides.split(",") if f),
        game.steam_error,
        game.launch,
    )


HAND_EDITABLE = ("title", "description", "header_image")


def edit_game(session: Session, slug: str, changes: dict[str, object]) -> bool:
    """Apply the admin's edits; hand-edited fields are never overwritten by Steam. True if the Steam app id changed."""
    game = _game(session, slug, Viewer("", True))
    overrides = {f for f in game.overrides.split(",") if f}
    for name in HAND_EDITABLE:
        if name in changes:
            setattr(game, name, changes[name])
            overrides.add(name)
    if "private" in changes:
        game.private = bool(changes["private"])
    if "launch" in changes:
        game.launch = str(changes["launch"])
    app_changed = "steam_app_id" in changes and changes["steam_app_id"] != game.steam_app_id
    if "steam_app_id" in changes:
        game.steam_app_id = changes["steam_app_id"]  # type: ignore[assignment]  # checked by the route
    game.overrides = ",".join(sorted(overrides))
    return app_changed and game.steam_app_id is not None


def steam_app(session: Session, slug: str) -> int | None:
    return _game(session, slug, Viewer("", True)).steam_app_id


def record_steam(session: Session, slug: str, description: str | None, header_image: str | None, error: str) -> None:
    """Store what Steam said, except into fields the admin set by hand; or store why it said nothing."""
    game = _game(session, slug, Viewer("", True))
    overrides = set(game.overrides.split(","))
    if not error:
        if description is not None and "description" not in overrides:
            game.description = description
        if header_image is not None and "header_image" not in overrides:
            game.header_image = header_image
        game.steam_synced_at = _now()
    game.steam_error = error[:500]


def add_build(
    session: Session,
    slug: str,
    version: str,
    digest: str,
    manifest: bytes,
    signature: str,
    total_size: int,
    file_count: int,
    chunk_count: int,
    stored_size: int,
    notes: str = "",
    launch: str = "",
    vouched_by: str = "",
) -> tuple[BuildRow, bool]:
    """The build's row, and whether this call created it (False: the same build pushed again).

    A build pushed with a launch command while its game has none gives the game that command, so the builds
    pushed after it start the same way without saying so. `vouched_by`: the manifest digest of the build whose
    chunks the commit did not look at again; PreviousGone (and nothing added) if the game no longer has it.
    """
    game = _game(session, slug, Viewer("", True))
    existing = session.scalar(select(Build).where(Build.game_id == game.id, Build.version == version))
    if existing is not None:
        if existing.manifest_digest == digest:
            return _build_row(slug, existing, game.launch), False  # the same push again: idempotent
        raise Conflict(f"{slug} {version} already exists with other content; push under a new version")
    if launch and not game.launch:
        game.launch, launch = launch, ""
    build = Build(
        game_id=game.id,
        version=version,
        manifest_digest=digest,
        manifest=manifest,
        signature=signature,
        total_size=total_size,
        file_count=file_count,
        chunk_count=chunk_count,
        stored_size=stored_size,
        created_at=_now(),
        notes=notes,
        launch=launch if launch != game.launch else "",
    )
    session.add(build)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{slug} {version} was pushed concurrently; run the push again") from exc
    if vouched_by and not _hold_build(session, game.id, vouched_by):  # after the insert: SQLite writes from now on
        raise PreviousGone("the build this commit's chunks were checked against was removed meanwhile")
    return _build_row(slug, build, game.launch), True


def record_news_status(session: Session, slug: str, version: str, status: str) -> None:
    """How a build's Discord post went, for `mistpipe ls` (the build may be gone by then: nothing to record)."""
    game_id = session.scalar(select(Game.id).where(Game.slug == slug))
    session.execute(update(Build).where(Build.game_id == game_id, Build.version == version).values(news_status=status[:500]))


def build_manifest_bytes(session: Session, slug: str, version: str) -> bytes:
    """The canonical manifest of a build (for checking a launch command against its files)."""
    game = _game(session, slug, Viewer("", True))
    data = session.scalar(select(Build.manifest).where(Build.game_id == game.id, Build.version == version))
    if data is None:
        raise NotFound(f"{slug} has no version {version!r}", {"missing": "version", "game": slug})
    return data


def edit_build(session: Session, slug: str, version: str, changes: dict[str, str]) -> BuildRow:
    """Set a build's release notes or its own launch command ("" = the game's)."""
    game = _game(session, slug, Viewer("", True))
    build = session.scalar(select(Build).where(Build.game_id == game.id, Build.version == version))
    if build is None:
        raise NotFound(f"{slug} has no version {version!r}", {"missing": "version", "game": slug})
    if "notes" in changes:
        build.notes = changes["notes"]
    if "launch" in changes:
        build.launch = changes["launch"] if changes["launch"] != game.launch else ""
    return _build_row(slug, build, game.launch)


class PreviousGone(Conflict):
    """The build a commit relied on for its chunks' presence left the catalog before the new one was in
    (the commit route catches it and checks every chunk instead)."""


def _hold_build(session: Session, game_id: int, digest: str) -> bool:
    """Whether the game still has the build of that manifest; its row is then locked (PostgreSQL; SQLite's one
    writer is this transaction already) until the new build is in, so a removal cannot come between."""
    held = select(Build.id).where(Build.game_id == game_id, Build.manifest_digest == digest).limit(1)
    return session.scalar(held.with_for_update()) is not None


def remove_build(session: Session, slug: str, version: str) -> None:
    """Delete a build from the catalog (friends' install records of it go with it); its objects wait for the GC."""
    game = _game(session, slug, Viewer("", True))
    build_id = session.scalar(select(Build.id).where(Build.game_id == game.id, Build.version == version))
    if build_id is None:
        raise NotFound(f"{slug} has no version {version!r}", {"missing": "version", "game": slug})
    session.execute(delete(Build).where(Build.id == build_id))


def get_build(session: Session, slug: str, version: str, viewer: Viewer) -> tuple[BuildRow, bytes, str]:
    game = _game(session, slug, viewer)
    build = session.scalar(select(Build).where(Build.game_id == game.id, Build.version == version))
    if build is None:
        raise NotFound(f"{slug} has no version {version!r}", {"missing": "version", "game": slug})
    return _build_row(slug, build, game.launch), build.manifest, build.signature


def readable_builds(session: Session, digests: list[str], viewer: Viewer) -> dict[str, tuple[str, str]]:
    """Manifest digest -> (game, version) for the builds among `digests` that `viewer` may read."""
    if not digests:
        return {}
    user_ok = viewer.is_admin or session.scalar(select(User.id).where(User.name == viewer.user, User.disabled.is_(False)))
    if not user_ok:
        return {}
    rows = session.execute(
        select(Build.manifest_digest, Game.slug, Build.version)
        .join(Game, Build.game_id == Game.id)
        .where(Build.manifest_digest.in_(digests), _visible(viewer))
    ).all()
    return {digest: (slug, version) for digest, slug, version in rows}


def resign_builds(session: Session, sign: Callable[[bytes], str]) -> int:
    """Sign every build's manifest again (with a new key); the bytes stay, only the stored signature changes.

    One build in memory at a time: a large game's manifest is tens of MB.
    """
    signed = 0
    for build_id in session.scalars(select(Build.id).order_by(Build.id)).all():
        manifest = session.scalar(select(Build.manifest).where(Build.id == build_id))
        if manifest is not None:
            session.execute(update(Build).where(Build.id == build_id).values(signature=sign(manifest)))
            signed += 1
    return signed
