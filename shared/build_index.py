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
import itertools
import json
import operator
import re
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from shared import manifest as manifest_mod
from shared.chunking import ChunkingParams, ChunkRef
from shared.manifest import FileEntry, Manifest

DIGEST = 32
_STORED = b"mist-build-index-1\n"  # then the SHA-256 of the rest, which is a JSON head's length, the head, the columns
_BUCKET_LOAD = 8  # digests per bucket on average: a lookup's find reads about this many


class DigestSet:
    """Distinct SHA-256 digests, sorted in one bytes object; membership and position by a bucket table."""

    def __init__(self, ordered: Sequence[bytes]) -> None:
        """`ordered`: distinct 32-byte digests in sorted order (`of` sorts them)."""
        self._blob = b"".join(ordered)
        bits = min(24, max(0, (len(ordered) // _BUCKET_LOAD).bit_length()))
        self._shift = 32 - bits
        self._starts = array("I", (bisect.bisect_left(ordered, (b << self._shift).to_bytes(4, "big")) for b in range(1 << bits)))
        self._starts.append(len(ordered))

    @classmethod
    def of(cls, digests: Iterable[bytes]) -> "DigestSet":
        return cls(sorted(set(digests)))

    @classmethod
    def _stored(cls, blob: bytes, starts: array[int]) -> "DigestSet":
        """As `to_bytes` kept it: the sorted digests and the bucket table (a power of two of buckets, plus one)."""
        buckets = len(starts) - 1
        if len(blob) % DIGEST or buckets < 1 or buckets & (buckets - 1) or starts[-1] != len(blob) // DIGEST:
            raise ValueError("digest set is damaged")
        made = cls.__new__(cls)
        made._blob, made._starts, made._shift = blob, starts, 32 - (buckets.bit_length() - 1)
        return made

    def __len__(self) -> int:
        return len(self._blob) // DIGEST

    def __repr__(self) -> str:
        return f"DigestSet({len(self)} digests, {len(self._starts) - 1} buckets)"

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._starts.itemsize * len(self._starts)

    def position(self, digest: bytes) -> int:
        """The digest's place in sorted order, or -1 if it is not in the set."""
        bucket = int.from_bytes(digest[:4], "big") >> self._shift
        end = self._starts[bucket + 1] * DIGEST
        at = self._blob.find(digest, self._starts[bucket] * DIGEST, end)
        while at > 0 and at % DIGEST:  # a match across two digests (never seen in practice, but possible): look on
            at = self._blob.find(digest, at + 1, end)
        return at // DIGEST if at >= 0 else -1

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, bytes) and len(digest) == DIGEST and self.position(digest) >= 0

    def positions(self, digests: bytes) -> list[int]:
        """For each 32-byte digest of `digests` (one after another), its `position` (-1: not in the set), for
        many at once without a Python call per digest."""
        blob, starts, shift = self._blob, self._starts, self._shift
        out = []
        for k in range(0, len(digests), DIGEST):
            digest = digests[k : k + DIGEST]
            bucket = int.from_bytes(digest[:4], "big") >> shift
            end = starts[bucket + 1] * DIGEST
            at = blob.find(digest, starts[bucket] * DIGEST, end)
            while at > 0 and at % DIGEST:  # as in `position`
                at = blob.find(digest, at + 1, end)
            out.append(at // DIGEST if at >= 0 else -1)
        return out

    def digest(self, position: int) -> bytes:
        return self._blob[position * DIGEST : (position + 1) * DIGEST]


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
        return (self._chunks.digest(i).hex() for i in range(len(self._chunks)))


_new_ref = functools.partial(tuple.__new__, ChunkRef)  # a ChunkRef from a (sha256, size) pair, made in C


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
    ) -> None:
        self.game, self.version, self.chunking = game, version, chunking
        self.chunks = chunks
        self._files = files
        self._chunk_at = chunk_at  # each file's chunks in order, as positions in `chunks`
        self._chunk_sizes = chunk_sizes
        self.contents = DigestSet.of(files.contents[i : i + DIGEST] for i in range(0, len(files.contents), DIGEST))
        by_content = array("I", [0]) * len(self.contents)
        for i in range(len(files.sizes) - 1, -1, -1):  # the first file of each content wins
            by_content[self.contents.position(files.contents[i * DIGEST : (i + 1) * DIGEST])] = i
        self._by_content = by_content
        self._first_use: array[int] | None = None  # per distinct chunk, its first place in `_chunk_at` (`locate`)

    def __repr__(self) -> str:
        return f"BuildIndex({self.game} {self.version}: {len(self)} files, {len(self.chunks)} chunks, {self.nbytes} bytes)"

    def __len__(self) -> int:
        return len(self._files.sizes)

    @property
    def nbytes(self) -> int:
        """About what the index holds in memory (what a cache of them is bounded by)."""
        f = self._files
        columns = (f.ends, f.sizes, f.first, self._chunk_at, self._chunk_sizes, self._by_content, self._first_use or array("I"))
        return (
            self.chunks.nbytes
            + self.contents.nbytes
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
            self._first_use = array("I", map(first.__getitem__, range(len(self.chunks))))
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
        return {n for n, at in zip(names, self._positions(names)) if at >= 0}

    def _positions(self, names: list[str]) -> list[int]:
        """Each chunk name's position in `chunks` (-1: the build has no such chunk, or it is no digest)."""
        try:
            raw = bytes.fromhex("".join(names))
        except ValueError:
            raw = b""
        if len(raw) != DIGEST * len(names) or any(len(n) != 2 * DIGEST for n in names):  # an odd name: one by one
            return [self.chunks.position(r) if (r := _raw(n)) is not None else -1 for n in names]
        return self.chunks.positions(raw)

    def has_content(self, sha256: str) -> bool:
        raw = _raw(sha256)
        return raw is not None and raw in self.contents

    def file(self, path: str) -> FileEntry | None:
        """The file at `path`, or None if the build has none there."""
        key = path.encode("utf-8", "surrogatepass")
        paths = _Paths(self._files)
        i = bisect.bisect_left(paths, key)
        return self._entry(i) if i < len(paths) and paths[i] == key else None

    def file_with_content(self, sha256: str) -> FileEntry | None:
        """A file of the build whose bytes hash to `sha256` (the first by path), or None."""
        raw = _raw(sha256)
        at = self.contents.position(raw) if raw is not None else -1
        return self._entry(self._by_content[at]) if at >= 0 else None

    def files(self) -> Iterator[FileEntry]:
        """Every file, one at a time (for the rare caller that walks the build)."""
        return (self._entry(i) for i in range(len(self)))

    def files_at(self, paths: Iterable[str]) -> dict[str, FileEntry]:
        """The files at these paths that the build has, by path: what a plan asks for the files it writes.

        As `file`, with each file's chunk digests turned to hex at once and its `ChunkRef`s made in C (a
        1 GiB file has 16,000: one at a time that was most of a plan's time)."""
        f, paths_of = self._files, _Paths(self._files)
        blob, starts = self.chunks._blob, functools.partial(operator.mul, DIGEST)
        out: dict[str, FileEntry] = {}
        for path in paths:
            key = path.encode("utf-8", "surrogatepass")
            i = bisect.bisect_left(paths_of, key)
            if i == len(paths_of) or paths_of[i] != key:
                continue
            lo, hi = f.first[i], f.first[i + 1]
            at = list(map(starts, self._chunk_at[lo:hi]))  # C loops: a Python call per chunk took most of the time
            names = b"".join(map(blob.__getitem__, map(slice, at, map(DIGEST.__add__, at)))).hex()
            hexes = [names[k : k + 2 * DIGEST] for k in range(0, len(names), 2 * DIGEST)]
            chunks = tuple(map(_new_ref, zip(hexes, self._chunk_sizes[lo:hi])))
            out[path] = FileEntry(
                path, f.sizes[i], bool(f.executable[i]), f.contents[i * DIGEST : (i + 1) * DIGEST].hex(), chunks
            )
        return out

    def has_file(self, path: str) -> bool:
        key = path.encode("utf-8", "surrogatepass")
        paths = _Paths(self._files)
        i = bisect.bisect_left(paths, key)
        return i < len(paths) and paths[i] == key

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

    def _entry(self, i: int) -> FileEntry:
        f = self._files
        chunks = tuple(
            ChunkRef(self.chunks.digest(self._chunk_at[j]).hex(), self._chunk_sizes[j]) for j in range(f.first[i], f.first[i + 1])
        )
        path = _Paths(f)[i].decode("utf-8", "surrogatepass")
        return FileEntry(path, f.sizes[i], bool(f.executable[i]), f.contents[i * DIGEST : (i + 1) * DIGEST].hex(), chunks)

    def to_bytes(self) -> bytes:
        """The index as one blob to keep beside the manifest it was made from (this machine's byte order), so a
        later start reads it instead of making it again: `from_bytes` takes it back."""
        f = self._files
        columns: list[tuple[str, bytes]] = [
            ("chunks", self.chunks._blob),
            ("starts", self.chunks._starts.tobytes()),
            ("paths", f.paths),
            ("ends", f.ends.tobytes()),
            ("sizes", f.sizes.tobytes()),
            ("executable", f.executable),
            ("contents", f.contents),
            ("first", f.first.tobytes()),
            ("chunk_at", self._chunk_at.tobytes()),
            ("chunk_sizes", self._chunk_sizes.tobytes()),
        ]
        head = json.dumps(
            {
                "game": self.game,
                "version": self.version,
                "chunking": self.chunking.to_json(),
                "byteorder": sys.byteorder,
                "columns": [[name, len(data)] for name, data in columns],
            }
        ).encode()
        body = b"".join([len(head).to_bytes(4, "big"), head, *(data for _, data in columns)])
        return _STORED + hashlib.sha256(body).digest() + body

    @classmethod
    def from_bytes(cls, blob: bytes) -> "BuildIndex":
        """An index `to_bytes` kept; ValueError if it is damaged or from another kind of machine (make it again)."""
        body = memoryview(blob)[len(_STORED) + 32 :]  # views, not copies: at 100 GB the blob is 67 MB
        if not blob.startswith(_STORED) or hashlib.sha256(body).digest() != blob[len(_STORED) : len(_STORED) + 32]:
            raise ValueError("stored build index is damaged")
        size = int.from_bytes(body[:4], "big")
        head = json.loads(bytes(body[4 : 4 + size]))
        if head["byteorder"] != sys.byteorder:
            raise ValueError("stored build index is from a machine of the other byte order")
        parts: dict[str, memoryview] = {}
        at = 4 + size
        for name, length in head["columns"]:
            parts[name], at = body[at : at + length], at + length

        def column(name: str, code: str) -> array[int]:
            values = array(code)
            values.frombytes(parts[name])
            return values

        chunks = DigestSet._stored(bytes(parts["chunks"]), column("starts", "I"))
        files = _Files(
            bytes(parts["paths"]),
            column("ends", "Q"),
            column("sizes", "Q"),
            bytes(parts["executable"]),
            bytes(parts["contents"]),
            column("first", "Q"),
        )
        return cls(
            head["game"],
            head["version"],
            ChunkingParams.from_json(head["chunking"]),
            chunks,
            files,
            column("chunk_at", "I"),
            column("chunk_sizes", "I"),
        )

    @classmethod
    def of(cls, manifest: Manifest) -> "BuildIndex":
        """The index of a parsed manifest."""
        columns = _Columns()
        for entry in manifest.files:
            columns.add(
                entry.path.encode("utf-8", "surrogatepass"),
                entry.size,
                entry.executable,
                entry.sha256,
                "".join(ref.sha256 for ref in entry.chunks),
                [ref.size for ref in entry.chunks],
            )
        return columns.index(manifest.game, manifest.version, manifest.chunking)

    @classmethod
    def scan(cls, data: bytes) -> "BuildIndex":
        """The index of canonical manifest bytes already known to be a valid build's (see the module's docstring)."""
        with manifest_mod._no_cycle_collection():  # millions of short-lived digests: the collector took 40% at 100 GB
            scanned = _scan(data)
        return scanned if scanned is not None else cls.of(manifest_mod.parse(data))


class _Columns:
    """The index's columns as the files come, one at a time."""

    def __init__(self) -> None:
        self.paths = bytearray()
        self.ends, self.sizes, self.first = array("Q"), array("Q"), array("Q", [0])
        self.executable, self.contents = bytearray(), bytearray()
        self.hexes: list[str] = []  # each file's chunk digests as one hex string (bytes.fromhex'd at the end)
        self.chunk_sizes = array("I")

    def add(self, path: bytes, size: int, executable: bool, sha256: str, chunk_hexes: str, sizes: Sequence[int]) -> None:
        self.paths += path
        self.ends.append(len(self.paths))
        self.sizes.append(size)
        self.executable.append(executable)
        self.contents += bytes.fromhex(sha256)
        self.hexes.append(chunk_hexes)
        self.chunk_sizes.extend(sizes)
        self.first.append(len(self.chunk_sizes))

    def index(self, game: str, version: str, chunking: ChunkingParams) -> BuildIndex:
        ordered = bytes.fromhex("".join(self.hexes))
        self.hexes = []
        digests = [ordered[i : i + DIGEST] for i in range(0, len(ordered), DIGEST)]
        distinct = sorted(set(digests))
        chunks = DigestSet(distinct)
        rank = dict(zip(distinct, range(len(distinct))))  # C loops: a lookup per chunk in Python took 3x as long
        chunk_at = array("I", map(rank.__getitem__, digests))
        del digests, distinct, rank
        files = _Files(bytes(self.paths), self.ends, self.sizes, bytes(self.executable), bytes(self.contents), self.first)
        return BuildIndex(game, version, chunking, chunks, files, chunk_at, self.chunk_sizes)


# One file entry of a canonical manifest: keys sorted, no spaces (shared/manifest.py writes exactly this).
_ENTRY = re.compile(
    rb'\{"chunks":\[((?:\["[0-9a-f]{64}",[1-9][0-9]*\](?:,(?=\[))?)*)\],"executable":(true|false),'
    rb'"path":("(?:[^"\\]|\\.)*"),"sha256":"([0-9a-f]{64})","size":(0|[1-9][0-9]*)\}'
)
_CHUNK_HEX = re.compile(rb"[0-9a-f]{64}")
_CHUNK_SIZE = re.compile(rb'",([0-9]+)\]')
_HEAD = re.compile(rb'\{"chunking":(\{[^{}]*\}),"files":\[')
_TAIL = re.compile(rb'\],"format":([12]),"game":"([a-z0-9-]+)",(?:"links":\[.*\],)?"version":"([A-Za-z0-9._+-]+)"\}\Z', re.S)


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
        at = entry.end()
        if data[at : at + 1] != b",":
            break
        at += 1
    tail = _TAIL.match(data, at)
    if tail is None:
        return None
    return columns.index(tail.group(2).decode(), tail.group(3).decode(), chunking)
