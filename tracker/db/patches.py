"""Queries about patch objects and what friends have installed (the planner's and the patch jobs' inputs)."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.db.models import Build, Game, Install, Patch
from tracker.db.queries import Viewer, _game, _now, _user_id
from tracker.errors import NotFound
from shared.patch_bundle import ALGORITHM as BUNDLE
from tracker.planner import BundleOption, PatchOption

IN_BATCH = 500  # SQLite's bound-parameter limit is far above this; it keeps IN lists reasonable
MAX_CHAIN_CONTENTS = 20_000  # contents a plan walks back through looking for chains (a big game's files, twice)


@dataclass(frozen=True)
class StoredManifest:
    game: str
    version: str
    digest: str
    data: bytes


def _batches(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for i in range(0, len(items), IN_BATCH):
        yield items[i : i + IN_BATCH]


def options_for(session: Session, targets: Iterable[str]) -> list[PatchOption]:
    """Every stored patch object whose target is one of these file contents."""
    found = []
    for batch in _batches(targets):
        rows = session.scalars(
            select(Patch).where(Patch.target_sha.in_(batch), Patch.object_sha.is_not(None), Patch.algorithm != BUNDLE)
        )
        found += [
            PatchOption(r.source_sha, r.target_sha, str(r.object_sha), r.object_size, r.stored_size, r.algorithm) for r in rows
        ]
    return found


def bundle_options(session: Session, targets: Iterable[str]) -> list[BundleOption]:
    """Every stored patch bundle that makes one of these file contents, with all its members (a bundle is one
    `patches` row per file it makes, all naming the same object, so the store's collection and backups see it)."""
    names: set[str] = set()
    for batch in _batches(targets):
        names.update(
            str(n)
            for n in session.scalars(
                select(Patch.object_sha).where(
                    Patch.target_sha.in_(batch), Patch.algorithm == BUNDLE, Patch.object_sha.is_not(None)
                )
            )
        )
    members: dict[str, list[Patch]] = {}
    for batch in _batches(names):
        for row in session.scalars(
            select(Patch).where(Patch.object_sha.in_(batch), Patch.algorithm == BUNDLE).order_by(Patch.id)
        ):
            members.setdefault(str(row.object_sha), []).append(row)
    return [
        BundleOption(name, rows[0].object_size, rows[0].stored_size, tuple((r.source_sha, r.target_sha) for r in rows))
        for name, rows in sorted(members.items())
    ]


def chain_options(
    session: Session, targets: Iterable[str], have: Container[str], max_steps: int, limit: int = MAX_CHAIN_CONTENTS
) -> list[PatchOption]:
    """The stored patches into these contents and, for chains of up to `max_steps`, into the contents those start
    from that the client lacks, step by step backwards (at most `limit` contents looked at in all)."""
    found: list[PatchOption] = []
    seen = set(targets)
    frontier = set(targets)
    for _ in range(max(0, max_steps)):
        if not frontier:
            break
        options = options_for(session, frontier)
        found += options
        frontier = set()
        for option in options:
            if option.source not in have and option.source not in seen and len(seen) < limit:
                seen.add(option.source)
                frontier.add(option.source)
    return found


def attempted(session: Session, targets: Iterable[str]) -> set[tuple[str, str, str]]:
    """(source, target, algorithm) of every patch made or tried for these targets, useful or not."""
    seen = set()
    for batch in _batches(targets):
        rows = session.execute(select(Patch.source_sha, Patch.target_sha, Patch.algorithm).where(Patch.target_sha.in_(batch)))
        seen |= {(s, t, a) for s, t, a in rows}
    return seen


def record_patch(
    session: Session,
    source: str,
    target: str,
    algorithm: str,
    object_sha: str | None,
    object_size: int,
    stored_size: int,
    seconds: float,
) -> None:
    """Remember a patch (or, with no object, that chunks beat it); a concurrent maker of the same one wins."""
    try:
        with session.begin_nested():
            session.add(
                Patch(
                    source_sha=source,
                    target_sha=target,
                    algorithm=algorithm,
                    object_sha=object_sha,
                    object_size=object_size,
                    stored_size=stored_size,
                    seconds=seconds,
                    created_at=_now(),
                )
            )
    except IntegrityError:
        pass


def record_patches(session: Session, rows: Iterable[tuple[str, str, str, str | None, int, int, float]]) -> None:
    """Several patches in one transaction (the planner's quick ones)."""
    for row in rows:
        record_patch(session, *row)


def _visible_builds(session: Session, digests: Iterable[str], viewer: Viewer, *columns: Any) -> Iterator[tuple[str, Any]]:
    """(game slug, the `columns`) of each build with one of these manifest digests that the viewer may see (the
    others are skipped, never revealed)."""
    seen: dict[str, bool] = {}
    for batch in _batches(digests):
        rows = session.execute(
            select(Game.slug, *columns).join(Game, Build.game_id == Game.id).where(Build.manifest_digest.in_(batch))
        )
        for slug, *values in rows:
            if slug not in seen:
                try:
                    _game(session, slug, viewer)
                    seen[slug] = True
                except NotFound:  # not visible to this viewer
                    seen[slug] = False
            if seen[slug]:
                yield slug, values


def manifests_by_digest(session: Session, digests: Iterable[str], viewer: Viewer) -> list[StoredManifest]:
    """The builds a client says it holds, among those it may see, with their manifests' bytes."""
    columns = (Build.version, Build.manifest_digest, Build.manifest)
    return [StoredManifest(slug, v, d, m) for slug, (v, d, m) in _visible_builds(session, digests, viewer, *columns)]


@dataclass(frozen=True)
class BuildRef:
    """A build as the plan route names it; its manifest's bytes are read only when its index is not kept."""

    game: str
    version: str
    digest: str


def build_digest(session: Session, slug: str, version: str, viewer: Viewer) -> str:
    """The manifest digest of a build the viewer may see (NotFound as `queries.get_build` says it)."""
    game = _game(session, slug, viewer)
    digest = session.scalar(select(Build.manifest_digest).where(Build.game_id == game.id, Build.version == version))
    if digest is None:
        raise NotFound(f"{slug} has no version {version!r}", {"missing": "version", "game": slug})
    return digest


def held_builds(session: Session, digests: Iterable[str], viewer: Viewer) -> list[BuildRef]:
    """`manifests_by_digest` without the manifests' bytes (tens of MB each for a big game)."""
    columns = (Build.version, Build.manifest_digest)
    return [BuildRef(slug, v, d) for slug, (v, d) in _visible_builds(session, digests, viewer, *columns)]


def recent_build_refs(session: Session, slug: str, limit: int) -> list[BuildRef]:
    """The game's last `limit` builds, newest first (where a chain's intermediate contents are looked for)."""
    game = _game(session, slug, Viewer("", True))
    rows = session.execute(
        select(Build.version, Build.manifest_digest).where(Build.game_id == game.id).order_by(Build.id.desc()).limit(limit)
    )
    return [BuildRef(slug, version, digest) for version, digest in rows]


def manifest_data(session: Session, digest: str) -> bytes:
    """The stored manifest with this digest (a build the caller already found)."""
    data = session.scalar(select(Build.manifest).where(Build.manifest_digest == digest).limit(1))
    if data is None:
        raise NotFound(f"no build has the manifest {digest}", {"missing": "build"})
    return data


def record_install(session: Session, user: str, slug: str, digest: str) -> None:
    """Note which build of a game this friend holds, so the next push makes patches from it."""
    game = _game(session, slug, Viewer("", True))
    build = session.scalar(select(Build).where(Build.game_id == game.id, Build.manifest_digest == digest))
    if build is None:
        return
    user_id = _user_id(session, user)
    row = session.get(Install, (user_id, game.id))
    if row is not None:
        row.build_id, row.seen_at = build.id, _now()
        return
    try:
        with session.begin_nested():
            session.add(Install(user_id=user_id, game_id=game.id, build_id=build.id, seen_at=_now()))
    except IntegrityError:
        pass  # the same friend's other plan request recorded it a moment ago


def record_held(session: Session, user: str, builds: dict[str, tuple[str, str]]) -> None:
    """A daemon announced these builds (digest -> (game, version)): each is what this friend holds of its game."""
    for digest, (game, _) in sorted(builds.items()):
        record_install(session, user, game, digest)


def patch_sources(session: Session, slug: str, version: str) -> list[StoredManifest]:
    """The builds to make patches from for a new build: the one pushed before it and every build friends hold."""
    game = _game(session, slug, Viewer("", True))
    target = session.scalar(select(Build).where(Build.game_id == game.id, Build.version == version))
    if target is None:
        return []
    previous = session.scalar(
        select(Build).where(Build.game_id == game.id, Build.id < target.id).order_by(Build.id.desc()).limit(1)
    )
    installed = session.scalars(
        select(Build).join(Install, Install.build_id == Build.id).where(Install.game_id == game.id, Build.id != target.id)
    ).all()
    chosen = {b.id: b for b in ([previous] if previous else []) + list(installed)}
    return [StoredManifest(slug, b.version, b.manifest_digest, b.manifest) for b in chosen.values()]


def latest_build(session: Session, slug: str) -> StoredManifest | None:
    """The game's build pushed last (its file contents were checked at its commit)."""
    game = _game(session, slug, Viewer("", True))
    build = session.scalar(select(Build).where(Build.game_id == game.id).order_by(Build.id.desc()).limit(1))
    return StoredManifest(slug, build.version, build.manifest_digest, build.manifest) if build else None


def build_manifest(session: Session, slug: str, version: str) -> StoredManifest | None:
    game = _game(session, slug, Viewer("", True))
    build = session.scalar(select(Build).where(Build.game_id == game.id, Build.version == version))
    return StoredManifest(slug, build.version, build.manifest_digest, build.manifest) if build else None
