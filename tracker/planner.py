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

Builds come as compact indexes (shared/build_index.py): the plan route keeps
them, and per request only the files to write and the chunks they need are
looked at. A parsed `Manifest` is taken too (the patch jobs, the commit and
the news, which hold whole builds anyway), read through `ParsedBuild`.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

from shared.manifest import FileEntry, Manifest
from shared.plan_wire import BUNDLE, CHUNKS, PATCH, BundleOffer, PatchOffer, Route

# Below this a patch saves less than its own header and bookkeeping cost.
MIN_PATCH_FILE = 512
# hdiffpatch holds both files and its index in memory (several times the file size).
MAX_PATCH_FILE = 256 * 1024 * 1024
# A renamed file is looked for among old files at most this many times larger or smaller.
RENAME_SIZE_RATIO = 4


class BuildFiles(Protocol):
    """What the planner asks of a build: a compact index (shared/build_index.py) or a parsed manifest's
    `ParsedBuild` answer alike."""

    game: str
    version: str

    def __len__(self) -> int: ...
    def files(self) -> Iterator[FileEntry]: ...
    def files_at(self, paths: Iterable[str]) -> dict[str, FileEntry]: ...
    def has_file(self, path: str) -> bool: ...
    def has_content(self, sha256: str) -> bool: ...
    def chunks_among(self, sha256s: Iterable[str]) -> set[str]: ...
    def holders(self, sha256s: Iterable[str]) -> dict[str, list[tuple[str, int]]]: ...
    def sizes(self) -> Iterator[tuple[str, int]]: ...


class ParsedBuild:
    """A parsed manifest answering as its index would, for the callers that hold whole builds anyway (the patch
    jobs, the commit, the news): a dict of its files and a set of its contents, its chunks walked per question
    in C loops (turning a parsed 100 GB build into an index first cost seconds more than the walk)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest, self.game, self.version = manifest, manifest.game, manifest.version
        self._by_path = {f.path: f for f in manifest.files}
        self._contents = {f.sha256 for f in manifest.files}

    def __repr__(self) -> str:
        return f"ParsedBuild({self.game} {self.version}: {len(self)} files)"

    def __len__(self) -> int:
        return len(self.manifest.files)

    def files(self) -> Iterator[FileEntry]:
        return iter(self.manifest.files)

    def files_at(self, paths: Iterable[str]) -> dict[str, FileEntry]:
        return {p: self._by_path[p] for p in paths if p in self._by_path}

    def has_file(self, path: str) -> bool:
        return path in self._by_path

    def has_content(self, sha256: str) -> bool:
        return sha256 in self._contents

    def chunks_among(self, sha256s: Iterable[str]) -> set[str]:
        wanted = set(sha256s)
        return {h for f in self.manifest.files for h in wanted.intersection(map(_hash_of, f.chunks))}

    def holders(self, sha256s: Iterable[str]) -> dict[str, list[tuple[str, int]]]:
        wanted, found = set(sha256s), dict[str, list[tuple[str, int]]]()
        for f in self.manifest.files:
            if wanted and not wanted.isdisjoint(map(_hash_of, f.chunks)):
                for h in dict.fromkeys(ref.sha256 for ref in f.chunks if ref.sha256 in wanted):
                    found.setdefault(h, []).append((f.path, f.size))
        return found

    def sizes(self) -> Iterator[tuple[str, int]]:
        return ((f.path, f.size) for f in self.manifest.files)


_hash_of = itemgetter(0)
Build = Manifest | BuildFiles


def readable(build: Build) -> BuildFiles:
    """The build as the planner reads it: an index as it is, a parsed manifest through `ParsedBuild`."""
    return ParsedBuild(build) if isinstance(build, Manifest) else build


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


def held_chunks(held: Iterable[Build], among: Iterable[str]) -> set[str]:
    """The chunks among `among` (those of the files to write) that the held builds have: a plan asks about
    the few thousand it writes, never for a set of a 100 GB build's 1.6 million."""
    found: set[str] = set()
    left = list(among)
    for build in map(readable, held):
        found |= build.chunks_among(left)
        left = [h for h in left if h not in found]
    return found


@dataclass(frozen=True)
class HeldContents:
    """The file contents a client holds: those of its held builds (asked of their indexes, never listed) and
    those it names (files of builds since removed). A container, as `in` is all the planner asks of it."""

    builds: tuple[BuildFiles, ...]
    named: frozenset[str] = field(default_factory=frozenset)

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and (sha256 in self.named or any(b.has_content(sha256) for b in self.builds))


def held_contents(held: Iterable[Build], named: Iterable[str] = ()) -> HeldContents:
    return HeldContents(tuple(readable(b) for b in held), frozenset(named))


def write_chunks(target: Build, write: Sequence[str]) -> set[str]:
    """The chunks of the files to write: the planner needs each one's stored size."""
    return {ref.sha256 for f in _files(readable(target), write).values() for ref in f.chunks}


def _files(build: BuildFiles, paths: Sequence[str]) -> dict[str, FileEntry]:
    """The build's files at these paths (each must be one), by path."""
    found = build.files_at(paths)
    if len(found) < len(set(paths)):
        missing = next(p for p in paths if p not in found)
        raise KeyError(f"{missing!r} is not a file of {build.game} {build.version}")
    return found


def _file(build: BuildFiles, path: str) -> FileEntry:
    return _files(build, [path])[path]


def cheapest_routes(have: Container[str], patches: Iterable[PatchOption], max_steps: int) -> dict[str, tuple[PatchOption, ...]]:
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
    target: Build,
    write: Sequence[str],
    held: Sequence[Build],
    stored: Mapping[str, int],
    patches: Iterable[PatchOption],
    contents: Iterable[str] = (),
    max_steps: int = 1,
    bundles: Iterable[BundleOption] = (),
    made: Mapping[str, FileEntry] | None = None,
) -> UpdatePlan:
    """Choose per file to write: the chunks it lacks, or the cheapest patch route from a content the client holds,
    or, for several files at once, a patch bundle that costs less than their own ways together.

    `stored` gives the stored size of every chunk in `write_chunks`; a chunk already paid for by an
    earlier file costs the next one nothing, so shared chunks are counted once. `contents` are file
    contents the client says it holds beyond the `held` builds (files of a build since removed).
    `patches` may include patches into contents the client lacks: with `max_steps` above 1 they are
    links of chains (the client applies them in turn). `bundles` are offered only to clients that apply them;
    one is usable only when the client holds every content it starts from. `made`: the files to write, if the
    caller has them already (a big file's entry is thousands of chunks: made once per request).
    """
    index, builds = readable(target), [readable(b) for b in held]
    have_chunks, have_contents = held_chunks(builds, stored.keys()), held_contents(builds, contents)
    routes = cheapest_routes(have_contents, patches, max_steps)
    by_path = _files(index, write) if made is None else made  # the files to write only
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
    alone: Sequence[Choice], by_path: Mapping[str, FileEntry], have: Container[str], bundles: Iterable[BundleOption]
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
    target: Build, sources: Iterable[Build], write: Sequence[str] | None = None, made: Mapping[str, FileEntry] | None = None
) -> list[tuple[FileEntry, FileEntry]]:
    """(source file, target file) for the patches worth making into `target` from each source build.

    A file whose path holds other content in the source is patched from that file (the same file,
    changed). A file the source build has under another name (renamed, moved, a versioned folder such as
    `game-1.2.dist-info/`) or whose chunks another file of the source holds more of (content moved
    between files) is patched from that other file too (`moved_from`): the client finds a patch's source
    by its content, wherever it lies. Sizes a patch cannot serve are left out. With `write`, only those
    files of the target are looked at (a plan's), and of each source only what they ask about; `made` as for
    `plan_update`.
    """
    new = readable(target)
    # By path, as the build lists them (the order the pairs come in); a path the target lacks asks for nothing.
    if write is None:
        entries = list(new.files())
    else:
        ordered = sorted(set(write))
        entries = [made[p] for p in ordered if p in made] if made is not None else list(new.files_at(ordered).values())
    pairs: dict[tuple[str, str], tuple[FileEntry, FileEntry]] = {}
    for source in map(readable, sources):
        changed = [e for e in entries if not source.has_content(e.sha256) and MIN_PATCH_FILE <= e.size <= MAX_PATCH_FILE]
        index = SourceIndex(source, {ref.sha256 for e in changed for ref in e.chunks}, _PathsOf(new))
        for entry in changed:
            before = source.files_at([entry.path]).get(entry.path)
            if before is not None and before.size <= MAX_PATCH_FILE:
                pairs.setdefault((before.sha256, entry.sha256), (before, entry))
            other = index.moved_from(entry)
            if other is not None:
                pairs.setdefault((other.sha256, entry.sha256), (other, entry))
    return list(pairs.values())


@dataclass(frozen=True)
class _PathsOf:
    """A build's paths as a container (`in`), asked of its index."""

    build: BuildFiles

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.build.has_file(path)


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
    costs ~3 CPU s per MB). Only the chunks in `wanted` are looked up (a 100 GB build has 1.6 million; a push
    changes a few thousand), and the vacated paths only once a new path asks for them."""

    def __init__(self, build: Build, wanted: AbstractSet[str], kept: Container[str] = frozenset()) -> None:
        self.build = readable(build)
        self.kept = kept
        self.holders = {
            h: [path for path, size in files if size <= MAX_PATCH_FILE] for h, files in self.build.holders(wanted).items()
        }
        self._vacated: tuple[dict[str, list[tuple[str, int]]], dict[str, list[tuple[str, int]]]] | None = None

    def __repr__(self) -> str:
        return f"SourceIndex(files={len(self.build)}, chunks={len(self.holders)})"

    def vacated(self) -> tuple[dict[str, list[tuple[str, int]]], dict[str, list[tuple[str, int]]]]:
        """The old files of patchable size whose paths the new build no longer has, by path shape and by name."""
        if self._vacated is None:
            by_shape: dict[str, list[tuple[str, int]]] = {}
            by_name: dict[str, list[tuple[str, int]]] = {}
            for path, size in self.build.sizes():
                if size <= MAX_PATCH_FILE and path not in self.kept:
                    by_shape.setdefault(path_shape(path), []).append((path, size))
                    by_name.setdefault(path.rsplit("/", 1)[-1], []).append((path, size))
            self._vacated = by_shape, by_name
        return self._vacated

    def moved_from(self, entry: FileEntry) -> FileEntry | None:
        """Another file of the old build to patch `entry` from, or None when the file at its own path is the
        best guess (or nothing resembles it)."""
        shared: dict[str, int] = {}
        for ref in {ref.sha256: ref for ref in entry.chunks}.values():
            for path in self.holders.get(ref.sha256, ()):
                shared[path] = shared.get(path, 0) + ref.size
        if shared:
            path = max(sorted(shared), key=shared.__getitem__)
            if path != entry.path and shared[path] > shared.get(entry.path, 0):
                return _file(self.build, path)
        if self.build.has_file(entry.path):
            return None
        by_shape, by_name = self.vacated()
        name = entry.path.rsplit("/", 1)[-1]
        for like in (by_shape.get(path_shape(entry.path), []), by_name.get(name, [])):
            near = [(p, n) for p, n in like if n * RENAME_SIZE_RATIO >= entry.size and entry.size * RENAME_SIZE_RATIO >= n]
            if near:
                return _file(self.build, min(near, key=lambda f: (abs(f[1] - entry.size), f[0]))[0])
        return None
