"""Making patch objects from the store: rebuild both file contents from their chunks, diff, store, record.

Used by the patch jobs (HDiffPatch, after a push and for jumps clients asked
for) and by the planner's route (a quick zstd delta made while the client
waits, so an uncommon jump is served at once). A patch that would move no
fewer bytes than the target file's chunks is recorded without an object, so
nobody makes it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shared import compression, pack, patch, patch_bundle
from shared.chunkstore import ChunkStore, read_file
from shared.errors import ChunkError, StoreError
from shared.manifest import FileEntry, Manifest
from tracker.planner import patch_pairs

log = logging.getLogger("mist.patching")

# record(source, target, algorithm, object_sha or None, object_size, stored_size, seconds)
Recorder = Callable[[str, str, str, str | None, int, int, float], None]


@dataclass(frozen=True)
class Made:
    source: str
    target: str
    algorithm: str
    object_sha: str | None
    stored_size: int
    chunk_bytes: int
    seconds: float

    @property
    def useful(self) -> bool:
        return self.object_sha is not None


def chunk_cost(store: ChunkStore, source: FileEntry, target: FileEntry) -> int:
    """Stored bytes of the target's chunks that the source file does not already have."""
    have = {ref.sha256 for ref in source.chunks}
    return sum(store.sizes({ref.sha256 for ref in target.chunks if ref.sha256 not in have}).values())


def make_one(store: ChunkStore, source: FileEntry, target: FileEntry, algorithm: str, record: Recorder) -> Made:
    started = time.monotonic()
    obj = patch.make(read_file(store, source), read_file(store, target), algorithm)
    stored = compression.compress(obj, patch.STORE_LEVEL[algorithm])
    cost = chunk_cost(store, source, target)
    seconds = round(time.monotonic() - started, 3)
    name: str | None = None
    if len(stored) < cost and len(stored) <= pack.MAX_RECORD:  # larger objects do not fit one record on the wire
        name = patch.object_name(obj)
        store.put(name, stored)
    record(source.sha256, target.sha256, algorithm, name, len(obj), len(stored), seconds)
    return Made(source.sha256, target.sha256, algorithm, name, len(stored), cost, seconds)


def make_all(
    store: ChunkStore,
    pairs: Iterable[tuple[FileEntry, FileEntry]],
    algorithm: str,
    record: Recorder,
    done: set[tuple[str, str, str]],
    budget: int | None = None,
) -> tuple[list[Made], int]:
    """Make every pair's patch not already in `done` (with a budget, up to that many target bytes).

    Returns what was made and how many pairs failed (a chunk missing or damaged in the store: the scrub
    quarantines it and the next push restores it; clients get those files by chunks meanwhile).
    """
    made = []
    failed = spent = 0
    for source, target in pairs:
        if (source.sha256, target.sha256, algorithm) in done:
            continue
        if budget is not None and spent + target.size > budget:
            continue
        spent += target.size
        try:
            made.append(make_one(store, source, target, algorithm, record))
        except (ChunkError, StoreError) as exc:
            log.warning("no %s patch %s -> %s: %s", algorithm, source.sha256[:12], target.sha256[:12], exc)
            failed += 1
        done.add((source.sha256, target.sha256, algorithm))
    return made, failed


def bundle_groups(pairs: Iterable[tuple[FileEntry, FileEntry]]) -> list[list[tuple[FileEntry, FileEntry]]]:
    """The pairs a bundle serves (targets up to patch_bundle.MAX_MEMBER_FILE, each made once), by path so that files
    of one folder sit side by side in the stream, cut where a bundle would pass its limits; a group of one is left to
    its own patch."""
    one: dict[str, tuple[FileEntry, FileEntry]] = {}  # per new content one old file: its own old self if it has one
    for source, target in pairs:
        if target.size <= patch_bundle.MAX_MEMBER_FILE and (target.sha256 not in one or source.path == target.path):
            one[target.sha256] = (source, target)
    small = sorted(one.values(), key=lambda p: (p[1].path, p[0].path))
    groups: list[list[tuple[FileEntry, FileEntry]]] = [[]]
    for source, target in small:
        group = groups[-1]
        if group and (
            len(group) == patch_bundle.MAX_MEMBERS
            or sum(t.size for _, t in group) + target.size > patch_bundle.MAX_TOTAL
            or sum(s.size for s, _ in group) + source.size > patch_bundle.MAX_TOTAL
        ):
            groups.append(group := [])
        group.append((source, target))
    return [g for g in groups if len(g) > 1]


def make_bundle(store: ChunkStore, pairs: list[tuple[FileEntry, FileEntry]], record: Recorder) -> Made | None:
    """One patch bundle for these pairs, stored and recorded as a row per file, if it moves fewer bytes than the
    targets' chunks the sources lack; None (and nothing recorded, so a later push may try again) if not."""
    started = time.monotonic()
    obj = patch_bundle.make([(read_file(store, s), read_file(store, t)) for s, t in pairs])
    stored = compression.compress(obj, patch.STORE_LEVEL[patch.HDIFF])
    cost = sum(chunk_cost(store, s, t) for s, t in pairs)
    seconds = round(time.monotonic() - started, 3)
    if len(stored) >= cost or len(stored) > pack.MAX_RECORD:
        return None
    name = patch.object_name(obj)
    store.put(name, stored)
    for source, target in pairs:
        record(source.sha256, target.sha256, patch_bundle.ALGORITHM, name, len(obj), len(stored), seconds)
    return Made(pairs[0][0].sha256, pairs[0][1].sha256, patch_bundle.ALGORITHM, name, len(stored), cost, seconds)


def make_bundles(
    store: ChunkStore,
    target: Manifest,
    sources: list[Manifest],
    paths: list[str] | None,
    done: set[tuple[str, str, str]],
    record: Recorder,
) -> list[Made]:
    """Patch bundles into `target`'s small changed files, one set per source build (a client applies a bundle only
    if it holds every file it starts from); a pair already in a bundle is not bundled again."""
    made = []
    for source in sources:
        pairs = [
            (s, t) for s, t in patch_pairs(target, [source], paths) if (s.sha256, t.sha256, patch_bundle.ALGORITHM) not in done
        ]
        for group in bundle_groups(pairs):
            try:
                bundle = make_bundle(store, group, record)
            except (ChunkError, StoreError) as exc:
                log.warning("no patch bundle of %d files into %s %s: %s", len(group), target.game, target.version, exc)
                continue
            done.update((s.sha256, t.sha256, patch_bundle.ALGORITHM) for s, t in group)
            if bundle is not None:
                made.append(bundle)
    return made
