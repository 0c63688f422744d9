"""Garbage collection of the store: remove the objects no remaining build needs, never one a live build or a push needs.

Mark and sweep. Live are every chunk and the manifest object of every build in
the catalog, and every patch object whose target is the content of one of
their files (a patch *from* a removed build's file still serves friends who
hold that build). Everything else is removed, except objects used within the
grace period (their mtime; 24 hours unless MIST_GC_GRACE_SECONDS says
otherwise): chunks an unfinished push uploaded before its commit, chunks the
seeder's missing-chunks query told a push it need not upload (the query marks
them used), and patches a job is making right now. Patch rows whose object
was removed go too, and so do "not worth it" rows for contents no build has
any more. The quarantine is left alone.

`mark` and `decide` are pure (sets in, sets out); `collect` does the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from shared import manifest as manifest_mod
from shared.chunkstore import ChunkStore
from shared.errors import ManifestError
from shared.manifest import Manifest
from tracker.db import garbage as queries
from tracker.db.engine import Database
from tracker.settings import GRACE_SECONDS

log = logging.getLogger("mist.gc")


@dataclass(frozen=True)
class Stored:
    """An object as the store holds it: when it was last written or used, and its size."""

    mtime: float
    size: int


@dataclass(frozen=True)
class PatchRow:
    id: int
    object_sha: str | None  # None: chunks were cheaper, the row only stops the pair being tried again
    target: str
    created: float  # seconds since the epoch


@dataclass(frozen=True)
class Live:
    objects: frozenset[str]  # chunks and manifest objects of the remaining builds
    contents: frozenset[str]  # SHA-256 of every file content of the remaining builds
    builds: int


@dataclass(frozen=True)
class Decision:
    remove: frozenset[str]
    kept_live: int
    kept_young: int  # not needed by any build, but used within the grace period
    forget: frozenset[int]  # patch rows to delete


def mark(builds: Iterable[tuple[str, Manifest]]) -> Live:
    """What the remaining builds need, from (manifest digest, manifest) of each."""
    objects: set[str] = set()
    contents: set[str] = set()
    count = 0
    for digest, manifest in builds:
        count += 1
        objects.add(digest)
        for f in manifest.files:
            contents.add(f.sha256)
            objects.update(ref.sha256 for ref in f.chunks)
    return Live(frozenset(objects), frozenset(contents), count)


def decide(stored: Mapping[str, Stored], live: Live, patches: Iterable[PatchRow], cutoff: float) -> Decision:
    """Which objects to remove and which patch rows to forget; nothing touched at or after `cutoff` goes."""
    rows = list(patches)
    keep = set(live.objects)
    keep.update(p.object_sha for p in rows if p.object_sha is not None and p.target in live.contents)
    unneeded = [name for name in stored if name not in keep]
    remove = frozenset(name for name in unneeded if stored[name].mtime < cutoff)
    forget = frozenset(
        p.id
        for p in rows
        if p.object_sha in remove
        or (p.target not in live.contents and p.created < cutoff and (p.object_sha is None or p.object_sha not in stored))
    )
    return Decision(remove, len(stored) - len(unneeded), len(unneeded) - len(remove), forget)


@dataclass
class GcReport:
    builds: int = 0
    objects_kept: int = 0
    objects_young: int = 0
    objects_removed: int = 0
    bytes_freed: int = 0
    patch_rows_removed: int = 0
    grace_seconds: float = GRACE_SECONDS
    seconds: float = 0.0
    error: str = ""
    removed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "builds": self.builds,
            "objects_kept": self.objects_kept,
            "objects_young": self.objects_young,
            "objects_removed": self.objects_removed,
            "bytes_freed": self.bytes_freed,
            "patch_rows_removed": self.patch_rows_removed,
            "grace_seconds": self.grace_seconds,
            "seconds": self.seconds,
            "error": self.error,
        }


def _listing(store: ChunkStore) -> dict[str, Stored]:
    return {s.name: Stored(s.used, s.size) for s in store.listing()}


def _manifests(db: Database) -> Iterator[tuple[str, Manifest]]:
    """Each remaining build's manifest, read and parsed one at a time (a large game's is tens of MB)."""
    for build_id in db.call(queries.build_ids):
        row = db.call(lambda s: queries.build_manifest(s, build_id))
        if row is not None:
            yield row[0], manifest_mod.parse(row[1])


def _epoch(when: datetime) -> float:
    return when.replace(tzinfo=timezone.utc).timestamp()


def collect(db: Database, store: ChunkStore, grace: float = GRACE_SECONDS, now: float | None = None) -> GcReport:
    """Mark what the catalog needs, then sweep the rest of the store that is older than the grace period."""
    started = time.monotonic()
    cutoff = (time.time() if now is None else now) - grace
    report = GcReport(grace_seconds=grace)
    stored = _listing(store)  # before the catalog is read, so a build committed meanwhile is marked
    try:
        live = mark(_manifests(db))
    except ManifestError as exc:
        report.error = f"a stored build's manifest does not parse ({exc}); nothing was removed"
        return report
    rows = [PatchRow(i, o, t, _epoch(c)) for i, o, t, c in db.call(queries.patch_rows)]
    decision = decide(stored, live, rows, cutoff)
    report.builds, report.objects_kept, report.objects_young = live.builds, decision.kept_live, decision.kept_young
    # Forget the rows first: a planner never offers a patch whose object is on its way out.
    report.patch_rows_removed = db.call(lambda s: queries.forget_patches(s, decision.forget))
    for name in sorted(decision.remove):
        size = store.remove_if_unused(name, cutoff)
        if size is None:
            report.objects_young += 1
            continue
        report.objects_removed += 1
        report.bytes_freed += size
        report.removed.append(name)
    report.seconds = round(time.monotonic() - started, 3)
    log.info("gc: %s", report.to_json())
    return report


def dry_run(db: Database, store: ChunkStore, grace: float = GRACE_SECONDS, now: float | None = None) -> GcReport:
    """What `collect` would remove now, removing nothing (the admin site shows it before the button)."""
    started = time.monotonic()
    cutoff = (time.time() if now is None else now) - grace
    report = GcReport(grace_seconds=grace)
    stored = _listing(store)
    try:
        live = mark(_manifests(db))
    except ManifestError as exc:
        report.error = f"a stored build's manifest does not parse ({exc}); a collection would remove nothing"
        return report
    rows = [PatchRow(i, o, t, _epoch(c)) for i, o, t, c in db.call(queries.patch_rows)]
    decision = decide(stored, live, rows, cutoff)
    report.builds, report.objects_kept, report.objects_young = live.builds, decision.kept_live, decision.kept_young
    report.objects_removed = len(decision.remove)
    report.bytes_freed = sum(stored[name].size for name in decision.remove)
    report.patch_rows_removed = len(decision.forget)
    report.seconds = round(time.monotonic() - started, 3)
    return report
