"""A build's bookkeeping in a few flat arrays, for servers that keep many builds and ask about a few chunks.

A parsed 100 GB `Manifest` is 1.6 million strings and tuples (~260 MB, and the parse peaks near 800 MB);
the seeder and the tracker keep a dozen builds at once. A `BuildIndex` holds the same facts as bytes
and arrays (~40 bytes a chunk): the build's distinct chunk digests sorted in one bytes object with a
table of where each leading-bits bucket starts (a lookup is one C `find` over a handful of digests), and
per file its path, size, flag, content digest and its chunks in order as positions in that sorted set.
A file's `FileEntry` is made only when asked for.

`BuildIndex.scan` reads canonical manifest bytes that were already checked (the seeder's store copy,
matched against the digest its ticket names; the tracker's, parsed strictly when the build was
committed) one file entry at a time, without the parse's millions of objects. Anything it does not
recognise as canonical goes through `manifest.parse` instead, so it never guesses.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import io
import itertools
import json
import operator
import re
import sys
from pathlib import Path
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from shared import manifest as manifest_mod
from shared.chunking import ChunkingParams, ChunkRef
from shared.digest_set import DIGEST as DIGEST, DigestSet as DigestSet  # where callers have found them
from shared.links import LinkEntry
from shared.manifest import FileEntry, Manifest

if TYPE_CHECKING:  # the delta's module (zstd, patches) is not loaded by every reader of an index
    from shared.manifest_delta import Rebuilt

_STORED = b"mist-build-index-1\n"  # then the SHA-256 of the rest, which is a JSON head's length, the head, the columns
# The same with chunk positions apart from sorted order (shared/digest_set.py): an older Mist refuses it as damaged
# and makes the index again, where it would misread version 1's columns.
_STORED_MOVED = b"mist-build-index-2\n"
_COLUMNS = {
    "starts": "I",
    "ends": "Q",
    "sizes": "Q",
    "first": "Q",
    "chunk_at": "I",
    "chunk_sizes": "I",
    "uses": "I",
    "spans": "Q",
    "gone": "I",
    "extra": "I",
    "extra_ids": "I",
}
_COMPACT_ABOVE = 1 / 32  # positions are numbered in sorted order again past this share of the chunks moved (or holes)


class FileInfo(NamedTuple):
    """A file of the build without its chunks: what verifying, owning and deleting files need."""

    path: str
    size: int
    executable: bool
    sha256: str


class ChunkNames:
    """A build's distinct chunks by hex name, as a frozenset of them would offer them (`in`, iteration, len)."""

    def __init__(self, chunks: DigestSet) -> None:
        self._chunks = chunks

    def __repr__(self) -> str:
        return f"ChunkNames({len(self)} chunks)"

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, name: object) -> bool:
        raw = _raw(name) if isinstance(name, str) else None
        return raw is not None and raw in self._chunks

    def __iter__(self) -> Iterator[str]:
        return (digest.hex() for digest in self._chunks)


_new_ref = functools.partial(tuple.__new__, ChunkRef)  # a ChunkRef from a (sha256, size) pair, made in C
_new_info = functools.partial(tuple.__new__, FileInfo)  # a FileInfo from its four fields, made in C


def _raw(hex_digest: str) -> bytes | None:
    try:
        raw = bytes.fromhex(hex_digest)
    except (ValueError, TypeError):
        return None
    return raw if len(raw) == DIGEST else None


@dataclass(frozen=True)
class _Files:
    """Per file, in the manifest's order (by path): the columns a `FileEntry` is made from."""

    paths: bytes  # UTF-8 paths one after another; path i is paths[ends[i-1]:ends[i]]
    ends: array[int]
    sizes: array[int]
    executable: bytes
    contents: bytes  # each file's SHA-256, 32 bytes each
    first: array[int]  # file i's chunks are chunk_at[first[i]:first[i+1]]


class _Paths:
    """The file paths as a sequence bisect can search (sorted: the manifest lists files by path)."""

    def __init__(self, files: _Files) -> None:
        self._files = files

    def __len__(self) -> int:
        return len(self._files.sizes)

    def __getitem__(self, i: int) -> bytes:
        ends = self._files.ends
        return self._files.paths[ends[i - 1] if i else 0 : ends[i]]


class BuildIndex:
    """What the seeder and the tracker's planner ask of a build, without holding it as Python objects."""

    def __init__(
        self,
        game: str,
        version: str,
        chunking: ChunkingParams,
        chunks: DigestSet,
        files: _Files,
        chunk_at: array[int],
        chunk_sizes: array[int],
        links: tuple[LinkEntry, ...] = (),
        uses: array[int] | None = None,
        spans: array[int] | None = None,
    ) -> None:
        self.game, self.version, self.chunking, self.links = game, version, chunking, links
        self.chunks = chunks
        self._files = files
        self._chunk_at = chunk_at  # each file's chunks in order, as positions in `chunks`
        self._chunk_sizes = chunk_sizes
        self._uses = uses  # per distinct chunk, how many times the build holds it (`following`; made when first needed)
        self._spans = spans  # where each file's entry starts and ends in the manifest's bytes (`following`), if known
        self._contents: tuple[DigestSet, array[int]] | None = None  # made when first asked: an update never asks
        self._first_use: array[int] | None = None  # per distinct chunk, its first place in `_chunk_at` (`locate`)

    @property
    def contents(self) -> DigestSet:
        """The distinct contents (SHA-256) of the build's files."""
        return self._by_contents()[0]

    def _by_contents(self) -> tuple[DigestSet, array[int]]:
        """The distinct contents, and for each the first file (by path) that has it."""
        if self._contents is None:
            packed = self._files.contents
            contents = [packed[i : i + DIGEST] for i in range(0, len(packed), DIGEST)]
            first = dict(zip(reversed(contents), range(len(contents) - 1, -1, -1)))  # the first file of each wins
            distinct = sorted(first)
            self._contents = DigestSet(distinct), array("I", map(first.__getitem__, distinct))
        return self._contents

    def __repr__(self) -> str:
        return f"BuildIndex({self.game} {self.version}: {len(self)} files, {len(self.chunks)} chunks, {self.nbytes} bytes)"

    def __len__(self) -> int:
        return len(self._files.sizes)

    @property
    def nbytes(self) -> int:
        """About what the index holds in memory (what a cache of them is bounded by)."""
        f = self._files
        columns = (
            f.ends,
            f.sizes,
            f.first,
            self._chunk_at,
            self._chunk_sizes,
            self._first_use or array("I"),
            self._uses or array("I"),
            self._spans or array("Q"),
        )
        return (
            self.chunks.nbytes
            + len(f.contents)
            + 4 * len(self)  # about the contents' lookup, made when first asked (or not yet)
            + len(f.paths)
            + len(f.executable)
            + len(f.contents)
            + sum(a.itemsize * len(a) for a in columns)
        )

    @property
    def chunk_names(self) -> ChunkNames:
        return ChunkNames(self.chunks)

    def locate(self, sha256: str) -> tuple[str, int, int] | None:
        """Where the build first holds a chunk: (file path, byte offset, size), or None if it has no such chunk."""
        raw = _raw(sha256)
        at = self.chunks.position(raw) if raw is not None else -1
        if at < 0:
            return None
        if self._first_use is None:  # made on the first call: the seeder never asks
            # The last write of a key wins, so walking backwards leaves each chunk's first place (C loops).
            first = dict(zip(reversed(self._chunk_at), range(len(self._chunk_at) - 1, -1, -1)))
            self._first_use = array("I", map(first.get, range(self.chunks.span), itertools.repeat(0)))
        j = self._first_use[at]
        i = bisect.bisect_right(self._files.first, j) - 1
        offset = sum(self._chunk_sizes[self._files.first[i] : j])
        return _Paths(self._files)[i].decode("utf-8", "surrogatepass"), offset, self._chunk_sizes[j]

    def has_chunk(self, sha256: str) -> bool:
        raw = _raw(sha256)
        return raw is not None and raw in self.chunks

    def chunks_among(self, sha256s: Iterable[str]) -> set[str]:
        """Those of these chunk names the build has (what `has_chunk` says of each, for thousands at once)."""
        names = list(sha256s)
        return {n for n, at in zip(names, self._positions(names, self.chunks.ranks)) if at >= 0}

    def _positions(self, names: list[str], many: Callable[[bytes], list[int]] | None = None) -> list[int]:
        """Each chunk name's position in `chunks` (-1: the build has no such chunk, or it is no digest); with
        `many` (`chunks.ranks`), what that says of them instead, where only membership matters."""
        try:
            raw = bytes.fromhex("".join(names))
        except ValueError:
            raw = b""
        if len(raw) != DIGEST * len(names) or set(map(len, names)) - {2 * DIGEST}:  # an odd name: one by one
            return [self.chunks.position(r) if (r := _raw(n)) is not None else -1 for n in names]
        return (many or self.chunks.positions)(raw)

    def has_content(self, sha256: str) -> bool:
        raw = _raw(sha256)
        return raw is not None and raw in self.contents

    def file(self, path: str) -> FileEntry | None:
        """The file at `path`, or None if the build has none there."""
        i = self._find(path)
        return self._entry(i) if i >= 0 else None

    def file_with_content(self, sha256: str) -> FileEntry | None:
        """A file of the build whose bytes hash to `sha256` (the first by path), or None."""
        raw = _raw(sha256)
        at = self.contents.position(raw) if raw is not None else -1
        return self._entry(self._by_contents()[1][at]) if at >= 0 else None

    def files(self) -> Iterator[FileEntry]:
        """Every file, one at a time (for the rare caller that walks the build)."""
        return (self._entry(i) for i in range(len(self)))

    @property
    def total_size(self) -> int:
        return sum(self._files.sizes)

    def infos(self) -> Iterator[FileInfo]:
        """Every file without its chunks, in path order: a 100 GB build's 1.6 million chunks stay in the arrays.

        Made in C loops (paths cut from one decoded string when they are ASCII, contents from one hex string): a
        Python step per file was a tenth of a 100 GB update's bookkeeping, asked twice."""
        f = self._files
        ends = f.ends
        cuts = map(slice, itertools.chain((0,), ends), ends)
        if f.paths.isascii():  # byte offsets are character offsets
            paths: Iterator[str] = map(f.paths.decode("ascii").__getitem__, cuts)
        else:
            paths = (f.paths[cut].decode("utf-8", "surrogatepass") for cut in cuts)
        hexes = f.contents.hex()
        contents = map(
            hexes.__getitem__, map(slice, range(0, len(hexes), 2 * DIGEST), range(2 * DIGEST, len(hexes) + 1, 2 * DIGEST))
        )
        return map(_new_info, zip(paths, f.sizes, map(bool, f.executable), contents))

    def info(self, path: str) -> FileInfo | None:
        """The file at `path` without its chunks, or None."""
        i = self._find(path)
        if i < 0:
            return None
        f = self._files
        return FileInfo(path, f.sizes[i], bool(f.executable[i]), f.contents[i * DIGEST : (i + 1) * DIGEST].hex())

    def _find(self, path: str) -> int:
        key = path.encode("utf-8", "surrogatepass")
        paths = _Paths(self._files)
        i = bisect.bisect_left(paths, key)
        return i if i < len(paths) and paths[i] == key else -1

    def places(self, names: Iterable[str], likely: Iterable[str] = ()) -> Iterator[tuple[str, Iterator[tuple[str, int]]]]:
        """Where the build holds any of these chunks (named as manifests name them): per file holding one, by path,
        its path and each (name, byte offset) of them in it, in order.

        An update wants a few thousand of a 100 GB build's 1.6 million chunks: files that hold none are passed
        over in C, and the offsets come from the size column without a `FileEntry` or a hex name per chunk."""
        asked = list(names)
        return self.places_at({at: name for name, at in zip(asked, self._positions(asked)) if at >= 0}, likely)

    def places_at(self, wanted: Mapping[int, str], likely: Iterable[str] = ()) -> Iterator[tuple[str, Iterator[tuple[str, int]]]]:
        """`places`, for chunks given by position (and the name to give each): no lookups at all. A build whose
        index `follows` this one names its chunks' positions so (the plan's target and the installed build).

        `likely`: paths that probably hold most of them (an update's files to write, in their old versions).
        When those hold every use the build has of every chunk wanted (its use counts say so), no other file
        can, and the pass over every file's chunks (0.08 CPU s at 100 GB) is not needed."""
        if not wanted:
            return
        f, chunk_at, sizes = self._files, self._chunk_at, self._chunk_sizes
        first = f.first
        only = self._only_holders(wanted, likely)
        files: Iterable[int] = only if only is not None else self._holding(wanted.keys())
        paths = _Paths(f)
        for i in files:
            lo, hi = first[i], first[i + 1]
            ids = chunk_at[lo:hi]
            hit = list(map(wanted.__contains__, ids))
            if not any(hit):
                continue
            found = map(wanted.__getitem__, itertools.compress(ids, hit))
            offsets = itertools.compress(accumulate(sizes[lo:hi], initial=0), hit)
            yield paths[i].decode("utf-8", "surrogatepass"), zip(found, offsets)

    def _holding(self, held: AbstractSet[int]) -> Iterator[int]:
        """Every file holding any of these chunk positions, in order; those that hold none passed over in C."""
        first, chunk_at = self._files.first, self._chunk_at
        lists = map(chunk_at.__getitem__, map(slice, first, itertools.islice(first, 1, None)))
        return itertools.compress(range(len(self)), map(operator.not_, map(held.isdisjoint, lists)))

    def _only_holders(self, wanted: Mapping[int, str], likely: Iterable[str]) -> list[int] | None:
        """The files at the `likely` paths, by path, if they hold every use of every chunk wanted; else None."""
        uses = self._uses
        if uses is None:
            return None  # counting them is a pass over every chunk too
        files = sorted({i for i in map(self._find, likely) if i >= 0})
        if not files:
            return None
        first, chunk_at = self._files.first, self._chunk_at
        seen: Counter[int] = Counter()
        for i in files:
            seen.update(filter(wanted.__contains__, chunk_at[first[i] : first[i + 1]]))
        held = list(filter(len(uses).__gt__, wanted))  # positions past its last are chunks it never had
        return files if all(map(operator.eq, map(uses.__getitem__, held), map(seen.__getitem__, held))) else None

    def use_counts(self) -> array[int]:
        """Per distinct chunk, how many times the build holds it (what `following` keeps up to date)."""
        if self._uses is None:
            counts = Counter(self._chunk_at)
            self._uses = array("I", map(counts.__getitem__, range(self.chunks.span)))
        return self._uses

    def follows(self, other: "BuildIndex") -> bool:
        """Whether this index was made from `other` in this process (`following`, `from_rebuilt`) and kept its chunk
        positions: then a position both hold is the same chunk in both (see shared/digest_set.py)."""
        return self.chunks.follows(other.chunks)

    def files_at(self, paths: Iterable[str], named: dict[int, str] | None = None) -> dict[str, FileEntry]:
        """The files at these paths that the build has, by path: what a plan asks for the files it writes; and into
        `named`, if given, each of their chunks' position with its name (what `places_at` takes).

        As `file`, with each file's chunk digests turned to hex at once and its `ChunkRef`s made in C (a
        1 GiB file has 16,000: one at a time that was most of a plan's time)."""
        out: dict[str, FileEntry] = {}
        for path in paths:
            i = self._find(path)
            if i >= 0:
                out[path] = self._entry(i, path, named)
        return out

    def has_file(self, path: str) -> bool:
        return self._find(path) >= 0

    def sizes(self) -> Iterator[tuple[str, int]]:
        """(path, size) of every file, by path, without making their `FileEntry`s (the planner looks for a
        renamed file's old self among a build's paths, not its chunks)."""
        paths, sizes = _Paths(self._files), self._files.sizes
        return ((paths[i].decode("utf-8", "surrogatepass"), sizes[i]) for i in range(len(self)))

    def holders(self, sha256s: Iterable[str]) -> dict[str, list[tuple[str, int]]]:
        """For each of these chunks (named as manifests name them) the build has, the files holding it: (path,
        size), by path, each once.

        One pass over the build's chunk column in C loops (about 50 ms at 1.6 million chunks), and only when
        the build has one of them at all; nothing the size of the build is kept."""
        names = list(sha256s)
        wanted = {at: name for name, at in zip(names, self._positions(names)) if at >= 0}
        found: dict[str, list[tuple[str, int]]] = {}
        if not wanted:
            return found
        f, paths = self._files, _Paths(self._files)
        slots = itertools.compress(range(len(self._chunk_at)), map(wanted.__contains__, self._chunk_at))
        i, end, file = -1, 0, ("", 0)
        for j in slots:
            if j >= end:  # the slots come in order: the file changes only past the current one's end
                i = bisect.bisect_right(f.first, j) - 1
                end, file = f.first[i + 1], (paths[i].decode("utf-8", "surrogatepass"), f.sizes[i])
            held = found.setdefault(wanted[self._chunk_at[j]], [])
            if not held or held[-1] is not file:  # the same file's repeats of a chunk are adjacent in its list
                held.append(file)
        return found

    def _entry(self, i: int, path: str | None = None, named: dict[int, str] | None = None) -> FileEntry:
        """File i with its chunks: their digests turned to hex at once and the `ChunkRef`s made in C (a 1 GiB file
        has 16,000: one at a time that was most of a plan's time)."""
        f = self._files
        lo, hi = f.first[i], f.first[i + 1]
        names = self.chunks.digests_at(self._chunk_at[lo:hi]).hex()
        cuts = map(slice, range(0, len(names), 2 * DIGEST), range(2 * DIGEST, len(names) + 1, 2 * DIGEST))
        hexes = list(map(names.__getitem__, cuts))
        chunks = tuple(map(_new_ref, zip(hexes, self._chunk_sizes[lo:hi])))
        if named is not None:
            named.update(zip(self._chunk_at[lo:hi], hexes))
        if path is None:
            path = _Paths(f)[i].decode("utf-8", "surrogatepass")
        return FileEntry(path, f.sizes[i], bool(f.executable[i]), f.contents[i * DIGEST : (i + 1) * DIGEST].hex(), chunks)

    def to_bytes(self) -> bytes:
        """The index as one blob to keep beside the manifest it was made from (this machine's byte order), so a
        later start reads it instead of making it again: `from_bytes` takes it back."""
        out = io.BytesIO()
        self.write(out)
        return out.getvalue()

    def write(self, out: BinaryIO) -> None:
        """`to_bytes` written to a seekable file a column at a time: no 67 MB blob in memory at 100 GB."""
        f = self._files
        columns: list[tuple[str, bytes | array[int]]] = [
            ("chunks", self.chunks._blob),
            ("starts", self.chunks._starts),
            ("paths", f.paths),
            ("ends", f.ends),
            ("sizes", f.sizes),
            ("executable", f.executable),
            ("contents", f.contents),
            ("first", f.first),
            ("chunk_at", self._chunk_at),
            ("chunk_sizes", self._chunk_sizes),
            *([("uses", self._uses)] if self._uses is not None else []),
            *([("spans", self._spans)] if self._spans is not None else []),
        ]
        chunks = self.chunks
        moved = chunks.moved or chunks.span != len(chunks)
        if moved:
            columns += [("gone", chunks._gone), ("extra", chunks._extra), ("extra_ids", chunks._extra_ids)]
        head = json.dumps(
            {
                "game": self.game,
                "version": self.version,
                "chunking": self.chunking.to_json(),
                "links": [[e.path, e.target] for e in self.links],
                "byteorder": sys.byteorder,
                "columns": [[name, memoryview(data).nbytes] for name, data in columns],
                **({"base": chunks._base, "span": chunks.span} if moved else {}),
            }
        ).encode()
        start = out.tell()
        out.write((_STORED_MOVED if moved else _STORED) + bytes(32))  # the SHA-256 of the rest, once it is written
        digest = hashlib.sha256()
        for part in [len(head).to_bytes(4, "big"), head, *(data for _, data in columns)]:
            digest.update(part)
            out.write(part)
        end = out.tell()
        out.seek(start + len(_STORED))
        out.write(digest.digest())
        out.seek(end)

    @classmethod
    def from_bytes(cls, blob: bytes) -> "BuildIndex":
        """An index `to_bytes` kept; ValueError if it is damaged or from another kind of machine (make it again)."""
        return cls.read(io.BytesIO(blob))

    @classmethod
    def read(cls, source: BinaryIO) -> "BuildIndex":
        """`from_bytes` from a file a column at a time, each read straight into its array (no blob beside them)."""
        prefix = source.read(len(_STORED) + 32 + 4)
        if len(prefix) != len(_STORED) + 36 or not prefix.startswith((_STORED, _STORED_MOVED)):
            raise ValueError("stored build index is damaged")
        moved = prefix.startswith(_STORED_MOVED)
        digest = hashlib.sha256(prefix[-4:])
        raw_head = source.read(int.from_bytes(prefix[-4:], "big"))
        digest.update(raw_head)
        try:
            head = json.loads(raw_head)
            lengths = [(str(name), int(length)) for name, length in head["columns"]]
            base, span = (int(head["base"]), int(head["span"])) if moved else (None, None)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError("stored build index is damaged") from exc
        parts: dict[str, bytes | array[int]] = {}
        for name, length in lengths:
            code = _COLUMNS.get(name)
            if code is None:
                part: bytes | array[int] = source.read(length)
                got = len(part)
            else:
                part = array(code)
                try:
                    part.fromfile(source, length // part.itemsize)
                except EOFError as exc:
                    raise ValueError("stored build index is damaged") from exc
                got = len(part) * part.itemsize
            if got != length:
                raise ValueError("stored build index is damaged")
            digest.update(part)
            parts[name] = part
        if source.read(1) or digest.digest() != prefix[len(_STORED) : len(_STORED) + 32]:
            raise ValueError("stored build index is damaged")
        if head.get("byteorder") != sys.byteorder:
            raise ValueError("stored build index is from a machine of the other byte order")

        def column(name: str) -> array[int]:
            found = parts[name]
            assert isinstance(found, array), "read as an array by its name"
            return found

        def blob(name: str) -> bytes:
            found = parts[name]
            assert isinstance(found, bytes), "read as bytes by its name"
            return found

        if moved != all(name in parts for name in ("gone", "extra", "extra_ids")):
            raise ValueError("stored build index is damaged")
        if moved:
            chunks = DigestSet._stored(
                blob("chunks"), column("starts"), base, span, column("gone"), column("extra"), column("extra_ids")
            )
        else:
            chunks = DigestSet._stored(blob("chunks"), column("starts"))
        files = _Files(blob("paths"), column("ends"), column("sizes"), blob("executable"), blob("contents"), column("first"))
        return cls(
            head["game"],
            head["version"],
            ChunkingParams.from_json(head["chunking"]),
            chunks,
            files,
            column("chunk_at"),
            column("chunk_sizes"),
            tuple(LinkEntry(path, target) for path, target in head.get("links", [])),
            column("uses") if "uses" in parts else None,
            column("spans") if "spans" in parts else None,
        )

    @classmethod
    def of(cls, manifest: Manifest) -> "BuildIndex":
        """The index of a parsed manifest."""
        columns = _Columns()
        for entry in sorted(manifest.files, key=lambda e: e.path):  # as the canonical bytes list them
            columns.add(
                entry.path.encode("utf-8", "surrogatepass"),
                entry.size,
                entry.executable,
                entry.sha256,
                "".join(ref.sha256 for ref in entry.chunks),
                [ref.size for ref in entry.chunks],
            )
        return columns.index(manifest.game, manifest.version, manifest.chunking, manifest.links)

    @classmethod
    def scan(cls, data: bytes) -> "BuildIndex":
        """The index of canonical manifest bytes already known to be a valid build's (see the module's docstring)."""
        with manifest_mod._no_cycle_collection():  # millions of short-lived digests: the collector took 40% at 100 GB
            scanned = _scan(data)
        return scanned if scanned is not None else cls.of(manifest_mod.parse(data))

    @classmethod
    def rebuilt_or_scanned(cls, old: "BuildIndex | None", rebuilt: "Rebuilt | None", manifest: bytes | Path) -> "BuildIndex":
        """The index of a manifest checked against its signed digest: from `old` (the held build's index) and the
        delta's shape when a delta of entries rebuilt it (`from_rebuilt`), else scanned from its bytes or file."""
        if old is not None and rebuilt is not None:
            made = cls.from_rebuilt(old, rebuilt)
            if made is not None:
                return made
        return cls.scan(manifest.read_bytes() if isinstance(manifest, Path) else manifest)

    @classmethod
    def from_rebuilt(cls, old: "BuildIndex", rebuilt: "Rebuilt") -> "BuildIndex | None":
        """The index of the manifest `manifest_delta.apply_to_file` rebuilt from the one `old` indexes, from where
        its bytes came: runs of `old`'s entries copied from its columns, the entries the delta carried read.
        Neither manifest is read again. None where the parts do not fit the canonical form (the caller scans)."""
        with manifest_mod._no_cycle_collection():
            return _from_rebuilt(old, rebuilt)

    @classmethod
    def following_or_scan(cls, data: bytes, held: "tuple[BuildIndex, bytes] | None") -> "BuildIndex":
        """The index of `data`: from `held` (an index and the manifest it indexes, a build before this one) by
        `following` where that fits, else scanned."""
        made = cls.following(held[0], held[1], data) if held is not None else None
        return made if made is not None else cls.scan(data)

    @classmethod
    def following(cls, old: "BuildIndex", old_data: bytes, data: bytes) -> "BuildIndex | None":
        """The index of `data` made from `old`, the index of `old_data` (the build held before an update): file
        entries that are byte for byte the same in both are copied from `old`'s columns, only the others are read.
        An update of 100 MB touches a few entries of a 100 GB build, so this costs what changed plus C-level copies,
        not a scan's seconds. Same trust as `scan` (bytes already checked); None where either is not what the
        scanner knows, so the caller scans instead."""
        with manifest_mod._no_cycle_collection():
            return _following(old, old_data, data)


class _Columns:
    """The index's columns as the files come, one at a time."""

    def __init__(self) -> None:
        self.paths = bytearray()
        self.ends, self.sizes, self.first = array("Q"), array("Q"), array("Q", [0])
        self.executable, self.contents = bytearray(), bytearray()
        self.hexes: list[str] = []  # each file's chunk digests as one hex string (bytes.fromhex'd at the end)
        self.chunk_sizes = array("I")
        self.spans = array("Q")  # as the scanner found the entries

    def add(self, path: bytes, size: int, executable: bool, sha256: str, chunk_hexes: str, sizes: Sequence[int]) -> None:
        self.paths += path
        self.ends.append(len(self.paths))
        self.sizes.append(size)
        self.executable.append(executable)
        self.contents += bytes.fromhex(sha256)
        self.hexes.append(chunk_hexes)
        self.chunk_sizes.extend(sizes)
        self.first.append(len(self.chunk_sizes))

    def index(self, game: str, version: str, chunking: ChunkingParams, links: tuple[LinkEntry, ...]) -> BuildIndex:
        spans = self.spans if len(self.spans) == 2 * len(self.sizes) else None
        ordered = bytes.fromhex("".join(self.hexes))
        self.hexes = []
        digests = [ordered[i : i + DIGEST] for i in range(0, len(ordered), DIGEST)]
        distinct = sorted(set(digests))
        chunks = DigestSet(distinct)
        rank = dict(zip(distinct, range(len(distinct))))  # C loops: a lookup per chunk in Python took 3x as long
        chunk_at = array("I", map(rank.__getitem__, digests))
        del digests, distinct, rank
        files = _Files(bytes(self.paths), self.ends, self.sizes, bytes(self.executable), bytes(self.contents), self.first)
        return BuildIndex(game, version, chunking, chunks, files, chunk_at, self.chunk_sizes, links, None, spans)


# One file entry of a canonical manifest: keys sorted, no spaces (shared/manifest.py writes exactly this).
_ENTRY = re.compile(
    rb'\{"chunks":\[((?:\["[0-9a-f]{64}",[1-9][0-9]*\](?:,(?=\[))?)*)\],"executable":(true|false),'
    rb'"path":("(?:[^"\\]|\\.)*"),"sha256":"([0-9a-f]{64})","size":(0|[1-9][0-9]*)\}'
)
_CHUNK_HEX = re.compile(rb"[0-9a-f]{64}")
_CHUNK_SIZE = re.compile(rb'",([0-9]+)\]')
_HEAD = re.compile(rb'\{"chunking":(\{[^{}]*\}),"files":\[')
_TAIL = re.compile(rb'\],"format":([12]),"game":"([a-z0-9-]+)",(?:"links":(\[.*\]),)?"version":"([A-Za-z0-9._+-]+)"\}\Z', re.S)


def _scan(data: bytes) -> BuildIndex | None:
    """The index read straight off canonical bytes, or None where they are not what this scanner knows."""
    head = _HEAD.match(data)
    if head is None:
        return None
    chunking = ChunkingParams.from_json(json.loads(head.group(1)))
    columns, at = _Columns(), head.end()
    while True:
        entry = _ENTRY.match(data, at)
        if entry is None:
            break
        chunk_list, executable, path, sha, size = entry.groups()
        columns.add(
            json.loads(path).encode("utf-8", "surrogatepass"),
            int(size),
            executable == b"true",
            sha.decode(),
            b"".join(_CHUNK_HEX.findall(chunk_list)).decode(),
            list(map(int, _CHUNK_SIZE.findall(chunk_list))),
        )
        columns.spans.extend((entry.start(), entry.end()))
        at = entry.end()
        if data[at : at + 1] != b",":
            break
        at += 1
    tail = _TAIL.match(data, at)
    if tail is None:
        return None
    return columns.index(tail.group(2).decode(), tail.group(4).decode(), chunking, _links(tail.group(3)))


def _links(listed: bytes | None) -> tuple[LinkEntry, ...]:
    return tuple(LinkEntry(e["path"], e["target"]) for e in json.loads(listed)) if listed else ()


_ENTRY_START = b'{"chunks":['  # only where an entry starts: a quote inside a string is escaped


@dataclass(frozen=True)
class _Layout:
    """Where a canonical manifest's file entries lie, and its head and tail."""

    chunking: ChunkingParams
    spans: list[tuple[int, int]]
    tail: re.Match[bytes]


def _layout(data: bytes) -> _Layout | None:
    head = _HEAD.match(data)
    if head is None:
        return None
    starts, at = [], data.find(_ENTRY_START, head.end())
    while at >= 0:  # bytes.find, not a regular expression: it skips through 100 MB many times faster
        starts.append(at)
        at = data.find(_ENTRY_START, at + len(_ENTRY_START))
    if not starts or starts[0] != head.end():
        return None
    end = data.find(b'],"format":', starts[-1])
    tail = _TAIL.match(data, end) if end > 0 else None
    if tail is None or any(data[s - 1] != ord(",") for s in starts[1:]):
        return None
    spans = [(a, b - 1) for a, b in zip(starts, starts[1:])] + [(starts[-1], end)]
    return _Layout(ChunkingParams.from_json(json.loads(head.group(1))), spans, tail)


def _following(old: BuildIndex, old_data: bytes, data: bytes) -> BuildIndex | None:
    after = _layout(data)
    if after is None:
        return None
    if old._spans is not None and len(old._spans) == 2 * len(old) and len(old) and old._spans[-1] <= len(old_data):
        spans = list(zip(old._spans[0::2], old._spans[1::2]))  # kept with the index: the held bytes need no cutting
    else:
        before = _layout(old_data)
        if before is None:
            return None
        spans = before.spans
    if len(spans) != len(old):
        return None
    same = _paired(old, old_data, spans, data, after.spans)
    if same is None:
        return None
    # The new entries, read one by one.
    read: dict[int, _Read] = {}
    for j, (a, b) in enumerate(after.spans):
        if same[j] >= 0:
            continue
        entry = _ENTRY.match(data, a, b)
        if entry is None or entry.end() != b:
            return None
        read[j] = _read(entry)
    return _joined(old, after, same, read)


_Read = tuple[bytes, int, bool, bytes, bytes, "array[int]"]  # a file entry read: path, size, flag, content, chunks, sizes


def _read(entry: re.Match[bytes]) -> _Read:
    chunk_list, executable, path, sha, size = entry.groups()
    return (
        json.loads(path).encode("utf-8", "surrogatepass"),
        int(size),
        executable == b"true",
        bytes.fromhex(sha.decode()),
        bytes.fromhex(b"".join(_CHUNK_HEX.findall(chunk_list)).decode()),
        array("I", map(int, _CHUNK_SIZE.findall(chunk_list))),
    )


def _joined(old: BuildIndex, after: _Layout, same: list[int], read: dict[int, _Read]) -> BuildIndex:
    """The new index from `old`'s columns for the entries `same` names (per new entry, the old one it is byte for
    byte; -1: none) and the entries `read`; the chunks that stop or start being held are counted here."""
    kept = set(same)
    uses = old.use_counts()
    change: Counter[int] = Counter()  # old position -> uses gained minus uses lost
    first, chunk_at = old._files.first, old._chunk_at
    for i in range(len(old)):
        if i not in kept:
            change.subtract(chunk_at[first[i] : first[i + 1]])
    fresh: Counter[bytes] = Counter()  # digests the old build did not hold -> their uses
    found: dict[int, list[int]] = {}  # per entry read, each chunk's old position (-1: fresh)
    for j, (_, _, _, _, digests, _) in read.items():
        places = found[j] = old.chunks.positions(digests)
        change.update(filter((0).__le__, places))
        fresh.update(
            digests[k * DIGEST : (k + 1) * DIGEST] for k in itertools.compress(range(len(places)), map((0).__gt__, places))
        )
    dropped = sorted(p for p, n in change.items() if uses[p] + n == 0)
    # Every chunk that stays keeps its position: the kept files' columns are copied as they are.
    chunks, added = old.chunks.changed(dropped, sorted(fresh))
    new_uses = array("I", uses)
    new_uses.extend(itertools.repeat(0, chunks.span - len(uses)))
    for p, n in change.items():
        new_uses[p] += n
    for digest, n in fresh.items():
        new_uses[added[digest]] = n
    # The columns: runs of files copied whole from the old index, the entries read in between.
    columns = _Copied(old)
    j = 0
    while j < len(same):
        if same[j] < 0:
            path, size, executable, content, digests, sizes = read[j]
            places = found[j]
            for k in itertools.compress(range(len(places)), map((0).__gt__, places)):  # the fresh ones
                places[k] = added[digests[k * DIGEST : (k + 1) * DIGEST]]
            positions = array("I", places)
            columns.one(path, size, executable, content, positions, sizes)
            j += 1
            continue
        end = j + 1
        while end < len(same) and same[end] == same[end - 1] + 1:
            end += 1
        columns.run(same[j], same[end - 1] + 1)
        j = end
    # Renumbered when bisecting the moves would cost lookups more than it saves, or positions nothing holds any
    # more (each update's new chunks take new ones) would make the arrays by position grow without end.
    if max(chunks.moved, chunks.span - len(chunks)) > len(chunks) * _COMPACT_ABOVE:
        chunks, remap, order = chunks.compacted()
        columns.chunk_at = array("I", map(remap.__getitem__, columns.chunk_at))
        new_uses = array("I", map(new_uses.__getitem__, order))
    tail = after.tail
    links = _links(tail.group(3))
    made = array("Q", [at for span in after.spans for at in span])
    return columns.index(tail.group(2).decode(), tail.group(4).decode(), after.chunking, chunks, links, new_uses, made)


def _paired(
    old: BuildIndex, old_data: bytes, before: list[tuple[int, int]], data: bytes, after: list[tuple[int, int]]
) -> list[int] | None:
    """Per new file entry, the old one it is byte for byte (-1: none). Both lists are sorted by path, so one walk
    pairs them; where two differ, their paths say whether the file changed, came or went."""
    old_view, paths = memoryview(old_data), _Paths(old._files)
    same = [-1] * len(after)
    i = 0
    for j, (a, b) in enumerate(after):
        new_path: bytes | None = None
        while i < len(before):
            start, end = before[i]
            if end - start == b - a and data.startswith(old_view[start:end], a):
                same[j] = i
                i += 1
                break
            new_path = new_path or _path_of(data, a, b)
            if new_path is None:
                return None
            if new_path == paths[i]:  # the same file, changed
                i += 1
                break
            if new_path < paths[i]:  # a new file
                break
            i += 1  # an old file the new build lacks
    return same


def entry_spans(data: bytes) -> list[tuple[int, int]] | None:
    """Where each file entry of canonical manifest bytes lies (start, end); None if they are not canonical."""
    layout = _layout(data)
    return None if layout is None else layout.spans


def entry_paths(data: bytes, spans: list[tuple[int, int]]) -> list[bytes] | None:
    """The path of each entry `entry_spans` found, as the index keeps it; None if one cannot be read."""
    paths = []
    for a, b in spans:
        path = _path_of(data, a, b)
        if path is None:
            return None
        paths.append(path)
    return paths


def _from_rebuilt(old: BuildIndex, rebuilt: Rebuilt) -> BuildIndex | None:
    """The new build's entries, from what `manifest_delta.apply_to_file` says of where its bytes came from: each
    copy must be a run of whole entries of the held manifest (where `old` says they lie), and the literal bytes
    between runs must read as the head, commas, whole entries and the tail, in the canonical form's order."""
    if old._spans is None or len(old._spans) != 2 * len(old):
        return None
    starts, ends = old._spans[0::2], old._spans[1::2]
    pieces: list[tuple[int, bytes | tuple[int, int]]] = []  # (new offset, literal bytes or a run of old entries)
    for at, offset, length in rebuilt.copies:
        first = bisect.bisect_left(starts, offset)
        last = bisect.bisect_left(ends, offset + length)
        if first >= len(old) or starts[first] != offset or last >= len(old) or ends[last] != offset + length:
            return None
        if any(starts[i + 1] != ends[i] + 1 for i in range(first, last)):
            return None
        pieces.append((at, (first, last + 1)))
    for at, data in rebuilt.literals:
        if pieces and not isinstance(pieces[-1][1], tuple) and pieces[-1][0] + len(pieces[-1][1]) == at:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + data)  # neighbours: read as one
        else:
            pieces.append((at, data))
    pieces.sort(key=lambda piece: piece[0])
    spans: list[tuple[int, int]] = []
    same: list[int] = []
    read: dict[int, _Read] = {}
    head: re.Match[bytes] | None = None
    tail: re.Match[bytes] | None = None
    expect, written = "head", 0
    for n, (at, piece) in enumerate(pieces):
        if at != written or tail is not None:
            return None
        if isinstance(piece, tuple):
            if expect != "entry":
                return None
            first, stop = piece
            spans += [(at + starts[i] - starts[first], at + ends[i] - starts[first]) for i in range(first, stop)]
            same += range(first, stop)
            written, expect = at + ends[stop - 1] - starts[first], "comma"
            continue
        pos = 0
        if expect == "head":
            head = _HEAD.match(piece)
            if head is None:
                return None
            pos, expect = head.end(), "entry"
        while pos < len(piece):
            if expect == "comma" and piece[pos : pos + 1] == b",":
                pos, expect = pos + 1, "entry"
                continue
            entry = _ENTRY.match(piece, pos) if expect == "entry" else None
            if entry is None:  # no entry here: the tail, which ends the manifest
                tail = _TAIL.match(piece, pos) if (expect == "comma" or not same and not read) else None
                if tail is None or n != len(pieces) - 1 or (expect == "entry" and (same or read)):
                    return None
                pos = tail.end()
                break
            read[len(same)] = _read(entry)
            spans.append((at + pos, at + entry.end()))
            same.append(-1)
            pos, expect = entry.end(), "comma"
        written = at + len(piece)
    if head is None or tail is None or written != rebuilt.size:
        return None
    return _joined(old, _Layout(ChunkingParams.from_json(json.loads(head.group(1))), spans, tail), same, read)


def _path_of(data: bytes, start: int, end: int) -> bytes | None:
    """The path of the canonical file entry at data[start:end] (its last keys are path, sha256 and size)."""
    at, sha = data.rfind(b',"path":"', start, end), data.rfind(b'","sha256":"', start, end)
    if at < 0 or sha < at:
        return None
    path = json.loads(data[at + 8 : sha + 1])
    return path.encode("utf-8", "surrogatepass") if isinstance(path, str) else None


class _Copied:
    """A new index's columns, from runs of the old index's files and files read anew."""

    def __init__(self, old: BuildIndex) -> None:
        self.old = old
        self.paths: list[bytes] = []
        self.path_bytes = 0
        self.ends, self.sizes, self.first = array("Q"), array("Q"), array("Q", [0])
        self.executable: list[bytes] = []
        self.contents: list[bytes] = []
        self.chunk_at, self.chunk_sizes = array("I"), array("I")

    def run(self, start: int, stop: int) -> None:
        """Old files start..stop-1, unchanged."""
        f = self.old._files
        low = f.ends[start - 1] if start else 0
        self.paths.append(f.paths[low : f.ends[stop - 1]])
        self.ends.extend(map((self.path_bytes - low).__add__, f.ends[start:stop]))
        self.path_bytes += f.ends[stop - 1] - low
        self.sizes.extend(f.sizes[start:stop])
        self.executable.append(f.executable[start:stop])
        self.contents.append(f.contents[start * DIGEST : stop * DIGEST])
        c0, c1 = f.first[start], f.first[stop]
        self.first.extend(map((len(self.chunk_at) - c0).__add__, f.first[start + 1 : stop + 1]))
        moved = self.old._chunk_at[c0:c1]
        self.chunk_at.extend(moved)  # positions stay (shared/digest_set.py): a copy in C
        self.chunk_sizes.extend(self.old._chunk_sizes[c0:c1])

    def one(self, path: bytes, size: int, executable: bool, content: bytes, positions: array[int], sizes: array[int]) -> None:
        self.paths.append(path)
        self.path_bytes += len(path)
        self.ends.append(self.path_bytes)
        self.sizes.append(size)
        self.executable.append(bytes([executable]))
        self.contents.append(content)
        self.chunk_at.extend(positions)
        self.chunk_sizes.extend(sizes)
        self.first.append(len(self.chunk_at))

    def index(
        self,
        game: str,
        version: str,
        chunking: ChunkingParams,
        chunks: DigestSet,
        links: tuple[LinkEntry, ...],
        uses: array[int],
        spans: array[int],
    ) -> BuildIndex:
        files = _Files(
            b"".join(self.paths), self.ends, self.sizes, b"".join(self.executable), b"".join(self.contents), self.first
        )
        return BuildIndex(game, version, chunking, chunks, files, self.chunk_at, self.chunk_sizes, links, uses, spans)
