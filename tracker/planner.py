"""The update planner: for every file a client must write, the cheapest way to get its bytes there.

Pure logic. The client says which builds it holds and which files of the
target it has to write; for each such file the planner weighs the chunks the
client lacks (their stored, compressed sizes) against every patch object from
a file content the client holds, and picks whichever moves fewer bytes. Any
version to any version: a patch is keyed by two file contents, never by a
version pair. When no direct patch is cheap (or none is made yet), a chain of
stored patches through contents the client lacks (A -> B -> C, made by the
pushes of B and C) is weighed too: the client applies each step and checks
every intermediate file against its SHA-256 before the next. A patch bundle
(several small files patched as one stream) replaces its files' own ways when
it costs less than they do together. Which patches are worth making is decided
here too: a changed file from its old self and, when it was renamed or its
content moved, from the old file most like it (`SourceIndex`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass
from operator import itemgetter

from shared.manifest import FileEntry, Manifest
from shared.plan_wire import BUNDLE, CHUNKS, PATCH, BundleOffer, PatchOffer, Route

# Below this a patch saves less than its own header and bookkeeping cost.
MIN_PATCH_FILE = 512
# hdiffpatch holds both files and its index in memory (several times the file size).
MAX_PATCH_FILE = 256 * 1024 * 1024
# A renamed file is looked for among old files at most this many times larger or smaller.
RENAME_SIZE_RATIO = 4


@dataclass(frozen=True)
class PatchOption:
    """A stored patch object: from one file content to another, and what it costs to move."""

    source: str
    target: str
    object_sha: str
    object_size: int
    stored_size: int
    algorithm: str
    build: str = ""  # a chain's intermediate step: the version of the game's build whose file it makes

    def offer(self) -> PatchOffer:
        """As the plan offers it to a client (the wire's type, shared/plan_wire.py)."""
        return PatchOffer(
            self.object_sha, self.source, self.object_size, self.stored_size, self.algorithm, self.target, self.build
        )

    def to_json(self) -> dict[str, object]:
        return self.offer().to_json()


@dataclass(frozen=True)
class BundleOption:
    """A stored patch bundle (shared/patch_bundle.py): several files made at once from old contents, all needed."""

    object_sha: str
    object_size: int
    stored_size: int
    members: tuple[tuple[str, str], ...]  # (source content, target content), in the bundle's order

    def offer(self) -> BundleOffer:
        return BundleOffer(self.object_sha, self.object_size, self.stored_size, self.members)


@dataclass(frozen=True)
class Choice:
    """How one file of the target is to be made, and the bytes each way would move."""

    path: str
    source: str  # CHUNKS or PATCH
    chunk_bytes: int  # stored bytes of the chunks the client lacks for this file (0: all on disk)
    file_bytes: int  # stored bytes of all the file's chunks (what a client holding none of them would fetch)
    steps: tuple[PatchOption, ...] = ()  # with PATCH: from a held content, each step's target the next one's source
    bundle: BundleOption | None = None  # with BUNDLE
    carries: bool = False  # with BUNDLE: this file's bytes are the bundle's (the first of its files in the plan)

    @property
    def patch(self) -> PatchOption | None:
        """The first patch, applied to the content the client holds."""
        return self.steps[0] if self.steps else None

    @property
    def bytes(self) -> int:
        if self.bundle is not None:
            return self.bundle.stored_size if self.carries else 0
        return sum(s.stored_size for s in self.steps) if self.steps else self.chunk_bytes

    def to_json(self) -> dict[str, object]:
        return Route(
            self.source,
            self.bytes,
            self.chunk_bytes,
            self.file_bytes,
            self.patch.offer() if self.patch else None,
            tuple(s.offer() for s in self.steps[1:]),
            self.bundle.object_sha if self.bundle else "",
        ).to_json(self.path)


@dataclass(frozen=True)
class UpdatePlan:
    choices: tuple[Choice, ...]

    def bytes_by_source(self) -> dict[str, int]:
        """Stored bytes by what carries them (a bundle is a patch object)."""
        totals = {CHUNKS: 0, PATCH: 0}
        for choice in self.choices:
            totals[CHUNKS if choice.source == CHUNKS else PATCH] += choice.bytes
        return totals

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"files": [c.to_json() for c in self.choices], "bytes": self.bytes_by_source()}
        bundles = {c.bundle.object_sha: c.bundle for c in self.choices if c.bundle is not None}
        if bundles:
            out["bundles"] = [b.offer().to_json() for b in bundles.values()]
        return out


def held_chunks(held: Iterable[Manifest], among: AbstractSet[str] | None = None) -> set[str]:
    """The chunks the held builds have (only those `among`, if given: a set of a 100 GB build's 1.6 million
    chunks is most of a plan's time and memory, and a plan asks about the few thousand it writes)."""
    if among is None:
        return {ref.sha256 for m in held for f in m.files for ref in f.chunks}
    wanted = among if isinstance(among, (set, frozenset)) else set(among)
    return {h for m in held for f in m.files for h in wanted.intersection(map(_hash_of, f.chunks))}


_hash_of = itemgetter(0)


def held_contents(held: Iterable[Manifest]) -> set[str]:
    return {f.sha256 for m in held for f in m.files}


def write_chunks(target: Manifest, write: Sequence[str]) -> set[str]:
    """The chunks of the files to write: the planner needs each one's stored size."""
    by_path = {f.path: f for f in target.files}
    return {ref.sha256 for p in write for ref in by_path[p].chunks}


def cheapest_routes(have: set[str], patches: Iterable[PatchOption], max_steps: int) -> dict[str, tuple[PatchOption, ...]]:
    """The cheapest chain of at most `max_steps` patches into every content reachable from `have`.

    Bellman-Ford by rounds: after round k, every content's cost is the cheapest route of at most k
    patches, so a long chain never beats a short one by a hidden extra step. A chain never passes
    through a content the client holds (it would start there).
    """
    edges = [o for o in patches if o.source != o.target and o.target not in have]
    best: dict[str, tuple[int, tuple[PatchOption, ...]]] = {}
    for _ in range(max(0, max_steps)):
        changed = False
        reached = dict(best)
        for option in edges:
            route: tuple[PatchOption, ...]
            if option.source in have:
                cost, route = option.stored_size, (option,)
            elif option.source in best:
                before, prior = best[option.source]
                if len(prior) >= max_steps or any(s.source == option.target for s in prior):
                    continue
                cost, route = before + option.stored_size, prior + (option,)
            else:
                continue
            current = reached.get(option.target)
            if current is None or (cost, len(route)) < (current[0], len(current[1])):
                reached[option.target] = (cost, route)
                changed = True
        best = reached
        if not changed:
            break
    return {target: route for target, (_, route) in best.items()}


def plan_update(
    target: Manifest,
    write: Sequence[str],
    held: Sequence[Manifest],
    stored: Mapping[str, int],
    patches: Iterable[PatchOption],
    contents: Iterable[str] = (),
    max_steps: int = 1,
    bundles: Iterable[BundleOption] = (),
) -> UpdatePlan:
    """Choose per file to write: the chunks it lacks, or the cheapest patch route from a content the client holds,
    or, for several files at once, a patch bundle that costs less than their own ways together.

    `stored` gives the stored size of every chunk in `write_chunks`; a chunk already paid for by an
    earlier file costs the next one nothing, so shared chunks are counted once. `contents` are file
    contents the client says it holds beyond the `held` builds (files of a build since removed).
    `patches` may include patches into contents the client lacks: with `max_steps` above 1 they are
    links of chains (the client applies them in turn). `bundles` are offered only to clients that apply them;
    one is usable only when the client holds every content it starts from.
    """
    have_chunks, have_contents = held_chunks(held, stored.keys()), held_contents(held) | set(contents)
    routes = cheapest_routes(have_contents, patches, max_steps)
    by_path = {f.path: f for f in target.files}
    alone = _each_alone(write, by_path, have_chunks, stored, routes, frozenset())
    bundled = choose_bundles(alone, by_path, have_contents, bundles)
    if not bundled:
        return UpdatePlan(tuple(alone))
    choices = _each_alone(write, by_path, have_chunks, stored, routes, frozenset(bundled))
    carried: set[str] = set()
    for i, choice in enumerate(choices):
        bundle = bundled.get(choice.path)
        if bundle is not None:
            choices[i] = Choice(
                choice.path, BUNDLE, choice.chunk_bytes, choice.file_bytes, (), bundle, bundle.object_sha not in carried
            )
            carried.add(bundle.object_sha)
    return UpdatePlan(tuple(choices))


def _each_alone(
    write: Sequence[str],
    by_path: Mapping[str, FileEntry],
    have_chunks: AbstractSet[str],
    stored: Mapping[str, int],
    routes: Mapping[str, tuple[PatchOption, ...]],
    skip: AbstractSet[str],
) -> list[Choice]:
    """Per file, its chunks or its patch route, whichever moves less; the files in `skip` pay for no chunk."""
    paid: set[str] = set()
    choices = []
    for path in write:
        entry = by_path[path]
        lacking = {ref.sha256 for ref in entry.chunks if ref.sha256 not in have_chunks and ref.sha256 not in paid}
        chunk_bytes = sum(stored[h] for h in lacking)
        file_bytes = sum(stored[ref.sha256] for ref in entry.chunks)
        route = routes.get(entry.sha256)
        if route and sum(s.stored_size for s in route) < chunk_bytes:
            choices.append(Choice(path, PATCH, chunk_bytes, file_bytes, route))
        else:
            if path not in skip:
                paid |= lacking
            choices.append(Choice(path, CHUNKS, chunk_bytes, file_bytes))
    return choices


def choose_bundles(
    alone: Sequence[Choice], by_path: Mapping[str, FileEntry], have: AbstractSet[str], bundles: Iterable[BundleOption]
) -> dict[str, BundleOption]:
    """The files (by path) a bundle should make: greedily, the bundle saving most over its files' own ways first,
    each file made by one bundle at most, and a bundle only if the client holds every content it starts from."""
    cost = {c.path: c.bytes for c in alone}
    by_content: dict[str, list[str]] = {}
    for c in alone:
        by_content.setdefault(by_path[c.path].sha256, []).append(c.path)
    usable = []
    for bundle in bundles:
        if all(source in have for source, _ in bundle.members):
            paths = [p for _, t in bundle.members for p in by_content.get(t, ())]
            usable.append((sum(cost[p] for p in paths) - bundle.stored_size, bundle, paths))
    chosen: dict[str, BundleOption] = {}
    for _, bundle, paths in sorted(usable, key=lambda u: (-u[0], u[1].object_sha)):
        free = [p for p in paths if p not in chosen]
        if free and sum(cost[p] for p in free) > bundle.stored_size:
            chosen.update((p, bundle) for p in free)
    return chosen


def patch_pairs(
    target: Manifest, sources: Iterable[Manifest], write: Sequence[str] | None = None
) -> list[tuple[FileEntry, FileEntry]]:
    """(source file, target file) for the patches worth making into `target` from each source build.

    A file whose path holds other content in the source is patched from that file (the same file,
    changed). A file the source build has under another name (renamed, moved, a versioned folder such as
    `game-1.2.dist-info/`) or whose chunks another file of the source holds more of (content moved
    between files) is patched from that other file too (`moved_from`): the client finds a patch's source
    by its content, wherever it lies. Sizes a patch cannot serve are left out.
    """
    wanted = set(write) if write is not None else None
    pairs: dict[tuple[str, str], tuple[FileEntry, FileEntry]] = {}
    for source in sources:
        old = {f.path: f for f in source.files}
        held = {f.sha256 for f in source.files}
        changed = [
            e
            for e in target.files
            if e.sha256 not in held and (wanted is None or e.path in wanted) and MIN_PATCH_FILE <= e.size <= MAX_PATCH_FILE
        ]
        index = SourceIndex(source, {ref.sha256 for e in changed for ref in e.chunks}, {f.path for f in target.files})
        for entry in changed:
            before = old.get(entry.path)
            if before is not None and before.size <= MAX_PATCH_FILE:
                pairs.setdefault((before.sha256, entry.sha256), (before, entry))
            other = index.moved_from(entry)
            if other is not None:
                pairs.setdefault((other.sha256, entry.sha256), (other, entry))
    return list(pairs.values())


_NUMBERS = re.compile(r"[0-9]+")


def path_shape(path: str) -> str:
    """A path with its numbers blanked, so a file in a versioned folder or name (`lib-1.10.15/RECORD`,
    `libfoo.so.3`) matches its successor (`lib-1.10.16/RECORD`, `libfoo.so.4`)."""
    return _NUMBERS.sub("#", path)


class SourceIndex:
    """One old build's files, indexed to find where a new file's content most likely came from: the file
    holding most of its chunks (content moved), else a file gone from the new build (`kept` are the new
    build's paths) whose path has the same shape, else the same name (renamed or moved), of a size within
    RENAME_SIZE_RATIO, the closest first. A name alone is weak evidence, so it is only trusted for a path that
    was vacated: a new `level5/data.bin` beside an old `level1/data.bin` still there is not tried (HDiffPatch
    costs ~3 CPU s per MB). Only the chunks in `wanted` are indexed (a 100 GB build has 1.6 million; a push
    changes a few thousand)."""

    def __init__(self, build: Manifest, wanted: AbstractSet[str], kept: AbstractSet[str] = frozenset()) -> None:
        self.by_path = {f.path: f for f in build.files}
        self.by_shape: dict[str, list[FileEntry]] = {}
        self.by_name: dict[str, list[FileEntry]] = {}
        self.holders: dict[str, list[FileEntry]] = {}
        for f in build.files:
            if f.size > MAX_PATCH_FILE:
                continue
            if f.path not in kept:
                self.by_shape.setdefault(path_shape(f.path), []).append(f)
                self.by_name.setdefault(f.path.rsplit("/", 1)[-1], []).append(f)
            if wanted and not wanted.isdisjoint(map(_hash_of, f.chunks)):
                for h in {ref.sha256 for ref in f.chunks if ref.sha256 in wanted}:
                    self.holders.setdefault(h, []).append(f)

    def __repr__(self) -> str:
        return f"SourceIndex(files={len(self.by_path)}, chunks={len(self.holders)})"

    def moved_from(self, entry: FileEntry) -> FileEntry | None:
        """Another file of the old build to patch `entry` from, or None when the file at its own path is the
        best guess (or nothing resembles it)."""
        shared: dict[str, int] = {}
        for ref in {ref.sha256: ref for ref in entry.chunks}.values():
            for f in self.holders.get(ref.sha256, ()):
                shared[f.path] = shared.get(f.path, 0) + ref.size
        same = self.by_path.get(entry.path)
        if shared:
            path = max(sorted(shared), key=shared.__getitem__)
            if path != entry.path and shared[path] > shared.get(entry.path, 0):
                return self.by_path[path]
        if same is not None:
            return None
        name = entry.path.rsplit("/", 1)[-1]
        for like in (self.by_shape.get(path_shape(entry.path), []), self.by_name.get(name, [])):
            near = [f for f in like if f.size * RENAME_SIZE_RATIO >= entry.size and entry.size * RENAME_SIZE_RATIO >= f.size]
            if near:
                return min(near, key=lambda f: (abs(f.size - entry.size), f.path))
        return None
