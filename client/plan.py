"""Planning an install or update on the client: which files change, where each chunk comes from.

Pure logic: it takes what is believed to be on disk and decides; the
installer carries the decision out and falls back to fetching any local
chunk whose bytes turn out not to match.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Collection, Iterable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter

from shared import manifest as manifest_mod
from shared.build_index import BuildIndex, FileInfo
from shared.links import LinkEntry
from shared.manifest import FileEntry, Manifest
from shared.paths import fold
from shared.plan_wire import BUNDLE, CHUNKS, PATCH, BundleOffer, PatchOffer, Route

DELETE_ASKS = 0.5  # an update that removes more than this share of an install's files or bytes asks first
IN_PLACE_MIN = 1 << 20  # smaller files are rewritten whole: cheaper than an undo journal and its fsyncs
DOWNLOAD_WORTH_WRITES = 10  # a byte downloaded costs about as much time as this many bytes written locally


@dataclass(frozen=True)
class Location:
    """Where a copy of a chunk may be read: a file (absolute path) and a byte offset."""

    path: str
    offset: int


@dataclass(frozen=True)
class Target:
    """The build an install or update converges on: its compact index (shared/build_index.py; never the parsed
    manifest: ~260 MB of Python objects at 100 GB) and its digest, which the tracker signed."""

    index: BuildIndex
    sha256: str

    @classmethod
    def of(cls, manifest: Manifest) -> "Target":
        return cls(BuildIndex.of(manifest), manifest.digest())

    @property
    def game(self) -> str:
        return self.index.game

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def links(self) -> tuple[LinkEntry, ...]:
        return self.index.links

    def digest(self) -> str:
        return self.sha256


@dataclass(frozen=True)
class Plan:
    """What an install or update will do, and what it costs, before anything is written."""

    target: Target
    unchanged: tuple[FileInfo, ...]
    modes: tuple[FileInfo, ...]
    write: tuple[FileEntry, ...]
    delete: tuple[str, ...]
    local: Mapping[str, tuple[Location, ...]]
    fetch: Mapping[str, int]
    links: tuple[LinkEntry, ...] = ()  # symbolic links to make (new, or pointing elsewhere now)
    # Files written where they lie (or into a clone): path -> the disk they take beyond the old file until the
    # swap, their changed chunks and the size they gain or lose (the undo journal keeps what is overwritten).
    in_place: Mapping[str, int] = field(default_factory=dict)

    @property
    def bytes_to_write(self) -> int:
        return sum(f.size for f in self.write)

    @property
    def peak_extra_disk(self) -> int:
        """The new versions of changed files sit beside the old ones until the swap; those written in place take
        only what changes."""
        beside = sum(f.size for f in self.write if f.path not in self.in_place)
        return beside + sum(self.in_place.values())

    def writing_in_place(self, installed: Mapping[str, FileEntry]) -> "Plan":
        """This plan with the files of `installed` (path -> the installed file's entry) written in place."""
        new = {f.path: f for f in self.write if f.path in installed}
        extra = {p: changed_bytes(installed[p], f) + abs(f.size - installed[p].size) for p, f in new.items()}
        return dataclasses.replace(self, in_place=extra)

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
            "links_to_make": len(self.links),
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


class InstalledChunks:
    """The chunks of the installed files, located only for the hashes an update needs: it needs a few thousand
    of a 100 GB build's 1.6 million, and indexing them all took most of the update's bookkeeping (issue 20)."""

    def __init__(self, files: Sequence[tuple[str, FileEntry]]) -> None:
        self._files = files

    def __repr__(self) -> str:
        return f"InstalledChunks(files={len(self._files)})"

    def only(self, wanted: Collection[str]) -> dict[str, list[Location]]:
        """Where each of `wanted` is held, as `index_chunks` would say, skipping (in C) the files that hold none."""
        keys = _keys(wanted)
        index: dict[str, list[Location]] = {}
        for path, entry in self._files:
            if keys.isdisjoint(map(_hash_of, entry.chunks)):
                continue
            _locate(index, path, entry, keys)
        return index


class InstalledBuilds:
    """`InstalledChunks` over installed builds' indexes (what the update plan asks): the index passes over (in C)
    the files that hold none of the chunks wanted, and gives the offsets of those wanted in the files that do,
    from its columns (no `FileEntry` or hex name per chunk of a rewritten 1 GiB pack)."""

    def __init__(self, builds: Sequence[tuple[str, BuildIndex]], gone: Mapping[str, AbstractSet[str]] | None = None) -> None:
        """`builds`: each installed build's index with its folder (joined with '/' to a file's path); `gone`: by
        folder, the paths of its build known to be missing from it (they hold nothing)."""
        self._builds = builds
        self._gone = gone or {}

    def __repr__(self) -> str:
        return f"InstalledBuilds(builds={len(self._builds)})"

    def only(
        self,
        wanted: Collection[str],
        named: tuple[BuildIndex, Mapping[int, str]] | None = None,
        likely: Collection[str] = (),
    ) -> dict[str, list[Location]]:
        """Where each of `wanted` is held, as `index_chunks` would say. `named`: the index the names come from and
        their positions in it; an installed build it `follows` is asked by position, without looking names up.
        `likely`: paths that probably hold most of them (see `BuildIndex.places_at`)."""
        keys = _keys(wanted)
        index: dict[str, list[Location]] = {}
        for root, build in self._builds:
            if named and named[0].follows(build):
                found = build.places_at(named[1], likely)
            else:
                found = build.places(keys, likely)
            gone = self._gone.get(root, frozenset())
            for path, held in found:
                if path in gone:
                    continue
                where = f"{root}/{path}"
                for name, offset in held:
                    index.setdefault(name, []).append(Location(where, offset))
        return index


def _keys(wanted: Collection[str]) -> AbstractSet[str]:
    return wanted.keys() if isinstance(wanted, dict) else wanted if isinstance(wanted, (set, frozenset)) else set(wanted)


def _locate(index: dict[str, list[Location]], path: str, entry: FileEntry, keys: AbstractSet[str]) -> None:
    for offset, ref in entry.offsets():
        if ref.sha256 in keys:
            index.setdefault(ref.sha256, []).append(Location(path, offset))


_hash_of = itemgetter(0)
_path_of = attrgetter("path")
_content_and_mode = itemgetter(3, 2)  # a FileInfo's (sha256, executable), as `on_disk` gives them
_ABSENT = ("", False)


def plan(
    target: Target,
    on_disk: Mapping[str, tuple[str, bool]],
    owned: Iterable[str],
    local: Mapping[str, list[Location]] | InstalledChunks | InstalledBuilds,
    links_on_disk: Mapping[str, str] | None = None,
) -> Plan:
    """Decide per file of `target`: keep (same content already at the path) or write, and per chunk: copy or fetch.

    `on_disk` maps install-relative paths to the (SHA-256, executable) believed to be there; a file whose
    content is right but whose executable bit is not only has its mode changed;
    `owned` are the paths the installed build put there (the only ones we may delete);
    `local` indexes chunks that installed files hold (or finds those the plan needs, when it is InstalledChunks);
    `links_on_disk` maps paths to the target of the symbolic link there.
    """
    # Tens of thousands of new tuples, lists and Locations at 100 GB, none of them garbage: the cycle collector
    # walked them again and again (0.2 CPU s of the plan); it runs as usual once they are made.
    with manifest_mod._no_cycle_collection():
        return _plan(target, on_disk, owned, local, links_on_disk)


def _plan(
    target: Target,
    on_disk: Mapping[str, tuple[str, bool]],
    owned: Iterable[str],
    local: Mapping[str, list[Location]] | InstalledChunks | InstalledBuilds,
    links_on_disk: Mapping[str, str] | None,
) -> Plan:
    files = list(target.index.infos())
    targets = set(map(_path_of, files)) | {e.path for e in target.links}
    delete = tuple(sorted(itertools.filterfalse(targets.__contains__, owned)))
    # A deleted name that folds to a target name is the same file on case-insensitive disks: the delete
    # would remove it, so such a target is always written (after the delete), never kept.
    case_renamed = {fold(p) for p in delete}
    # Most files of a 100 GB build are as the disk holds them: those are told apart in C loops.
    there = map(on_disk.get, map(_path_of, files), itertools.repeat(_ABSENT))
    kept = list(map(operator.eq, there, map(_content_and_mode, files)))
    if case_renamed:
        kept = [same and fold(f.path) not in case_renamed for same, f in zip(kept, files)]
    unchanged = list(itertools.compress(files, kept))
    modes: list[FileInfo] = []
    written: list[str] = []
    for f in itertools.compress(files, map(operator.not_, kept)):
        sha, _ = on_disk.get(f.path, _ABSENT)
        if sha != f.sha256 or (case_renamed and fold(f.path) in case_renamed):
            written.append(f.path)
        else:
            modes.append(f)
    named: dict[int, str] = {}  # the written files' chunks by their positions in the target's index
    write = list(target.index.files_at(written, named).values())  # only the files written are made with their chunks
    needed: dict[str, int] = {}
    for entry in write:
        needed.update(entry.chunks)  # (sha256, size) pairs: a dict made in C
    if isinstance(local, InstalledBuilds):
        found = local.only(needed, (target.index, named), written)  # the files written hold most, in their old versions
        sources = {h: tuple(places) for h, places in found.items()}
    elif isinstance(local, InstalledChunks):
        sources = {h: tuple(places) for h, places in local.only(needed).items()}  # found among those needed only
    else:
        sources = {h: tuple(local[h]) for h in needed if local.get(h)}
    fetch = {h: size for h, size in needed.items() if h not in sources}
    present = links_on_disk or {}
    links = tuple(e for e in target.links if present.get(e.path) != e.target or fold(e.path) in case_renamed)
    return Plan(target, tuple(unchanged), tuple(modes), tuple(write), delete, sources, fetch, links)


def removes_most(installed: BuildIndex, plan: Plan) -> str:
    """What an update removes of the installed build, in words, when that is most of it; "" when it is not.

    Most: more than half of its files, or of its bytes. Removing is what loses a friend's game when a build
    was pushed wrong (an empty or half folder), so such an update is confirmed first.
    """
    files = [f for f in map(installed.info, plan.delete) if f is not None]
    removed_bytes = sum(f.size for f in files)
    if not len(installed) or (len(files) <= DELETE_ASKS * len(installed) and removed_bytes <= DELETE_ASKS * installed.total_size):
        return ""
    shown = ", ".join(f.path for f in files[:3]) + (", ..." if len(files) > 3 else "")
    return (
        f"{plan.target.game} {plan.target.version} removes {len(files)} of the {len(installed)} files of "
        f"{installed.version} here ({shown}) and writes {len(plan.write)}"
    )


# The plan's wire types are the tracker's too (shared/plan_wire.py); these are their names in the client.
PatchRef = PatchOffer


@dataclass(frozen=True)
class Routes:
    """The tracker's plan for the files to write (see tracker/planner.py), and the better patches on their way."""

    by_path: Mapping[str, Route]
    coming: tuple[str, ...] = ()
    bundles: Mapping[str, BundleOffer] = field(default_factory=dict)  # by object name

    def get(self, path: str) -> Route:
        return self.by_path.get(path) or Route(CHUNKS, 0, 0, 0)

    def by_chunks(self, paths: Collection[str]) -> "Routes":
        """These files fetched by their chunks whatever way the tracker chose: a file written in place takes its
        changed chunks, not a patch (see `in_place_worth`), and the estimate must say so."""
        if not paths:
            return self
        by_path = dict(self.by_path)
        for path in paths:
            route = by_path.get(path)
            if route is not None and route.source != CHUNKS:
                by_path[path] = Route(CHUNKS, route.chunk_bytes, route.chunk_bytes, route.file_bytes)
        return Routes(by_path, self.coming, self.bundles)

    def bytes_by_source(self) -> dict[str, int]:
        """Stored bytes by what carries them (a bundle is a patch object)."""
        totals = {CHUNKS: 0, PATCH: 0}
        for route in self.by_path.values():
            totals[CHUNKS if route.source == CHUNKS else PATCH] += route.bytes
        return totals


def estimate_download(plan: Plan, routes: Routes) -> dict[str, int]:
    """Bytes the update will download, by source, before it starts: the patches the tracker chose, and the stored
    bytes of the chunks no file on this disk holds (the tracker knows only builds; this machine knows its disk).

    A file's chunks are counted at the file's compression ratio the tracker reported, each chunk once.
    """
    totals = {CHUNKS: 0, PATCH: 0}
    counted: set[str] = set()
    for entry in plan.write:
        route = routes.get(entry.path)
        if route.source in (PATCH, BUNDLE):
            totals[PATCH] += route.bytes
            continue
        missing = 0
        for ref in entry.chunks:
            if ref.sha256 in plan.fetch and ref.sha256 not in counted:
                counted.add(ref.sha256)
                missing += ref.size
        ratio = route.file_bytes / entry.size if route.file_bytes and entry.size else 1.0
        totals[CHUNKS] += round(missing * ratio)
    return totals


def parse_routes(answer: object, write: Iterable[str]) -> Routes:
    """Read the tracker's plan answer; a file it does not mention, or mentions oddly, is fetched by chunks
    (and all of them when the answer is not even a JSON object)."""
    if not isinstance(answer, Mapping):
        return Routes({})
    wanted = set(write)
    bundles: dict[str, BundleOffer] = {}
    listed = answer.get("bundles")
    for item in listed if isinstance(listed, list) else []:
        try:
            offer = BundleOffer.from_json(item) if isinstance(item, Mapping) else None
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            continue
        if offer is not None:
            bundles[offer.object] = offer
    by_path: dict[str, Route] = {}
    files = answer.get("files")
    for item in files if isinstance(files, list) else []:
        try:
            path, route = Route.from_json(item)
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            continue
        if route.source == BUNDLE and route.bundle not in bundles:
            route = Route(CHUNKS, route.chunk_bytes, route.chunk_bytes, route.file_bytes)  # a bundle it does not name
        if path in wanted:
            by_path[path] = route
    coming = answer.get("coming")
    paths = tuple(sorted({str(c.get("path")) for c in coming if isinstance(c, dict)})) if isinstance(coming, list) else ()
    return Routes(by_path, paths, bundles)


def changed_bytes(old: FileEntry, new: FileEntry) -> int:
    """Bytes of `new` in chunks that are not at the same offset in `old`: what writing only the changes writes."""
    there = set(old.offsets())
    return sum(ref.size for offset, ref in new.offsets() if (offset, ref) not in there)


def in_place_worth(old: FileEntry, new: FileEntry, route: Route) -> bool:
    """Whether to write only the changed chunks into the installed file (or its clone) rather than a whole new
    file: worth it for a large file when the changes (written twice at worst) are well under its size, and a
    patch route given up for chunks downloads little more than the whole write would cost in time."""
    if old.size < IN_PLACE_MIN or new.size < IN_PLACE_MIN:
        return False
    changed = changed_bytes(old, new)
    saved = new.size - 2 * changed
    if saved <= 0:
        return False
    extra_download = max(0, route.chunk_bytes - route.bytes) if route.source == PATCH else 0
    return extra_download * DOWNLOAD_WORTH_WRITES < saved
