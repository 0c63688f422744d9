"""Planning an install or update on the client: which files change, where each chunk comes from.

Pure logic: it takes what is believed to be on disk and decides; the
installer carries the decision out and falls back to fetching any local
chunk whose bytes turn out not to match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.manifest import FileEntry, Manifest
from shared.pack import MAX_RECORD
from shared.paths import fold


@dataclass(frozen=True)
class Location:
    """Where a copy of a chunk may be read: a file (absolute path) and a byte offset."""

    path: str
    offset: int


@dataclass(frozen=True)
class Plan:
    """What an install or update will do, and what it costs, before anything is written."""

    target: Manifest
    unchanged: tuple[FileEntry, ...]
    modes: tuple[FileEntry, ...]
    write: tuple[FileEntry, ...]
    delete: tuple[str, ...]
    local: Mapping[str, tuple[Location, ...]]
    fetch: Mapping[str, int]

    @property
    def bytes_to_write(self) -> int:
        return sum(f.size for f in self.write)

    @property
    def peak_extra_disk(self) -> int:
        """The new versions of changed files sit beside the old ones until the swap."""
        return self.bytes_to_write

    @property
    def bytes_to_fetch(self) -> int:
        """Uncompressed size of the distinct chunks no local file holds (the wire carries them compressed)."""
        return sum(self.fetch.values())

    @property
    def bytes_local(self) -> int:
        return sum(ref.size for f in self.write for ref in f.chunks if ref.sha256 in self.local)

    def to_json(self) -> dict[str, object]:
        return {
            "files_unchanged": len(self.unchanged),
            "files_mode_only": len(self.modes),
            "files_to_write": len(self.write),
            "files_to_delete": len(self.delete),
            "bytes_to_write": self.bytes_to_write,
            "bytes_to_fetch_uncompressed": self.bytes_to_fetch,
            "bytes_from_local": self.bytes_local,
            "peak_extra_disk": self.peak_extra_disk,
        }


def index_chunks(files: Iterable[tuple[str, FileEntry]]) -> dict[str, list[Location]]:
    """Every chunk held by the given (absolute path, manifest entry) files, with where to read it."""
    index: dict[str, list[Location]] = {}
    for path, entry in files:
        for offset, ref in entry.offsets():
            index.setdefault(ref.sha256, []).append(Location(path, offset))
    return index


def plan(
    target: Manifest,
    on_disk: Mapping[str, tuple[str, bool]],
    owned: Iterable[str],
    local: Mapping[str, list[Location]],
) -> Plan:
    """Decide per file of `target`: keep (same content already at the path) or write, and per chunk: copy or fetch.

    `on_disk` maps install-relative paths to the (SHA-256, executable) believed to be there; a file whose
    content is right but whose executable bit is not only has its mode changed;
    `owned` are the paths the installed build put there (the only ones we may delete);
    `local` indexes chunks that installed files hold.
    """
    targets = {f.path for f in target.files}
    delete = tuple(sorted(p for p in owned if p not in targets))
    # A deleted name that folds to a target name is the same file on case-insensitive disks: the delete
    # would remove it, so such a target is always written (after the delete), never kept.
    case_renamed = {fold(p) for p in delete}
    unchanged, modes, write = [], [], []
    for f in target.files:
        sha, executable = on_disk.get(f.path, ("", False))
        if sha != f.sha256 or fold(f.path) in case_renamed:
            write.append(f)
        elif executable != f.executable:
            modes.append(f)
        else:
            unchanged.append(f)
    needed: dict[str, int] = {}
    for f in write:
        for ref in f.chunks:
            needed[ref.sha256] = ref.size
    sources = {h: tuple(local[h]) for h in needed if local.get(h)}
    fetch = {h: size for h, size in needed.items() if h not in sources}
    return Plan(target, tuple(unchanged), tuple(modes), tuple(write), delete, sources, fetch)


CHUNKS, PATCH = "chunks", "patch"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True)
class PatchRef:
    """A patch object the tracker offers: fetch `size` bytes (uncompressed) named `object`, apply to content `source`."""

    object: str
    source: str
    size: int
    stored_size: int
    algorithm: str


@dataclass(frozen=True)
class Route:
    """The tracker's choice for one file to write, and the stored bytes each way would move."""

    source: str  # CHUNKS or PATCH
    bytes: int
    chunk_bytes: int
    file_bytes: int = 0
    patch: PatchRef | None = None


@dataclass(frozen=True)
class Routes:
    """The tracker's plan for the files to write (see tracker/planner.py), and the better patches on their way."""

    by_path: Mapping[str, Route]
    coming: tuple[str, ...] = ()

    def get(self, path: str) -> Route:
        return self.by_path.get(path) or Route(CHUNKS, 0, 0, 0)

    def bytes_by_source(self) -> dict[str, int]:
        totals = {CHUNKS: 0, PATCH: 0}
        for route in self.by_path.values():
            totals[route.source] += route.bytes
        return totals


def parse_routes(answer: Mapping[str, object], write: Iterable[str]) -> Routes:
    """Read the tracker's plan answer; a file it does not mention, or mentions oddly, is fetched by chunks."""
    wanted = set(write)
    by_path: dict[str, Route] = {}
    files = answer.get("files")
    for item in files if isinstance(files, list) else []:
        try:
            path = item["path"]
            if path not in wanted:
                continue
            offer = item.get("patch")
            ref = None
            if item["source"] == PATCH and isinstance(offer, dict):
                ref = PatchRef(str(offer["object"]), str(offer["from"]), int(offer["size"]),
                               int(offer["stored_size"]), str(offer["algorithm"]))
                # The plan is not signed: an object name becomes a file name, so only a SHA-256 will do.
                if not (_SHA256.match(ref.object) and _SHA256.match(ref.source) and 0 < ref.size <= MAX_RECORD):
                    ref = None
            by_path[path] = Route(PATCH if ref else CHUNKS, int(item["bytes" if ref else "chunk_bytes"]), int(item["chunk_bytes"]),
                                  int(item.get("file_bytes", 0)), ref)
        except (KeyError, TypeError, ValueError):
            continue
    coming = answer.get("coming")
    paths = tuple(sorted({str(c.get("path")) for c in coming if isinstance(c, dict)})) if isinstance(coming, list) else ()
    return Routes(by_path, paths)
