"""A game's builds in figures: what each added to the store (dedup), the patches into it, the next version.

Pure apart from reading stored sizes from the store it is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.chunkstore import ChunkStore
from tracker.db.admin_views import StoredBuild
from tracker.planner import PatchOption
from tracker.routes.updates import parsed_manifest


@dataclass(frozen=True)
class PatchGroup:
    """The patches into one build from the files of earlier builds."""

    sources: str  # the versions that hold the source files, like "1.0, 1.1"
    files: int
    bytes: int


@dataclass
class BuildFigures:
    version: str
    digest: str
    stored_bytes: int  # the compressed size of all its chunks
    new_bytes: int  # of those, the ones no earlier build of the game had
    new_chunks: int
    chunks: int
    patches: list[PatchGroup] = field(default_factory=list)

    @property
    def reused_fraction(self) -> float:
        return 1 - self.new_bytes / self.stored_bytes if self.stored_bytes else 0.0


def figures(store: ChunkStore, builds: list[StoredBuild], options: Iterable[PatchOption]) -> list[BuildFigures]:
    """Per build, oldest first: its stored bytes and those it added to the game, and the patches into it."""
    seen: set[str] = set()
    holders: dict[str, set[str]] = {}  # file content -> versions that have it
    by_target: dict[str, list[PatchOption]] = {}
    for option in options:
        by_target.setdefault(option.target, []).append(option)
    out = []
    for build in builds:
        manifest = parsed_manifest(build.digest, build.manifest)
        chunks = set(manifest.chunk_sizes())
        sizes = store.sizes(chunks)
        new = chunks - seen
        row = BuildFigures(
            build.version, build.digest, sum(sizes.values()), sum(sizes.get(h, 0) for h in new), len(new), len(chunks)
        )
        groups: dict[str, list[int]] = {}
        for f in manifest.files:
            usable = [o for o in by_target.get(f.sha256, []) if holders.get(o.source)]
            if not usable:
                continue
            best = min(usable, key=lambda o: o.stored_size)
            key = ", ".join(sorted(holders[best.source]))
            groups.setdefault(key, []).append(best.stored_size)
        row.patches = [PatchGroup(k, len(v), sum(v)) for k, v in sorted(groups.items())]
        for f in manifest.files:
            holders.setdefault(f.sha256, set()).add(build.version)
        seen |= chunks
        out.append(row)
    return out


def next_version(latest: str | None) -> str:
    """A guess at the next version for the push command: the last number of the latest one, plus one."""
    if not latest:
        return "1.0"
    match = re.search(r"(\d+)(?!.*\d)", latest)
    if match is None:
        return latest + ".1"
    return latest[: match.start()] + str(int(match.group(1)) + 1) + latest[match.end() :]
