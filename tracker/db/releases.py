"""Queries for announcing a published build: the game's title and privacy, the build before it, and who may read it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.db.models import Build
from tracker.db.patches import StoredManifest
from tracker.db.queries import Viewer, _game, readable_builds


@dataclass(frozen=True)
class ReleaseFacts:
    title: str
    private: bool
    previous: StoredManifest | None  # the build of the game pushed just before this one


def release_facts(session: Session, slug: str, version: str) -> ReleaseFacts:
    game = _game(session, slug, Viewer("", True))
    target_id = session.scalar(select(Build.id).where(Build.game_id == game.id, Build.version == version))
    before = session.scalar(
        select(Build).where(Build.game_id == game.id, Build.id < target_id).order_by(Build.id.desc()).limit(1)
    ) if target_id is not None else None
    previous = StoredManifest(slug, before.version, before.manifest_digest, before.manifest) if before else None
    return ReleaseFacts(game.title, game.private, previous)


def readers(session: Session, digest: str, viewers: Iterable[Viewer]) -> set[Viewer]:
    """The viewers among these who may read the build, by the catalog's own rule (grants, disabled accounts)."""
    return {v for v in set(viewers) if digest in readable_builds(session, [digest], v)}
