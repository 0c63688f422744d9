"""The build manifest: what files a build has and which chunks make each one.

The canonical encoding (sorted keys, no spaces, UTF-8, files sorted by path) is
what the tracker signs and what everyone hashes, so one build has exactly one
byte representation. `parse` rejects anything that is not canonical, not
well-formed, or names a hostile path.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from operator import itemgetter
from dataclasses import dataclass

from shared.chunking import ChunkingParams, ChunkRef
from shared.errors import ManifestError
from shared.links import LinkEntry, validate_links
from shared.paths import validate_tree

FORMAT_VERSION = 1  # a build without symbolic links: the same bytes (and digest) as before links existed
LINKS_FORMAT = 2  # a build with symbolic links, which a Mist that does not know them refuses as too new
MAX_FILES = 1_000_000

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_HEXES = re.compile(r"[0-9a-f]*\Z")

_FILE_KEYS = {"path", "size", "executable", "sha256", "chunks"}
_TOP_KEYS = {"format", "game", "version", "chunking", "files"}
_LINK_KEYS = {"path", "target"}


@dataclass(frozen=True)
class FileEntry:
    """One file of a build: where it goes, what it hashes to, and its chunks in order."""

    path: str
    size: int
    executable: bool
    sha256: str
    chunks: tuple[ChunkRef, ...]

    def offsets(self) -> Iterator[tuple[int, ChunkRef]]:
        """Each chunk with its byte offset in the file."""
        offset = 0
        for ref in self.chunks:
            yield offset, ref
            offset += ref.size


@dataclass(frozen=True)
class Manifest:
    """A whole build. Built by `mistpipe push`, signed by the tracker, read by clients."""

    game: str
    version: str
    chunking: ChunkingParams
    files: tuple[FileEntry, ...]
    links: tuple[LinkEntry, ...] = ()

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def chunk_sizes(self) -> dict[str, int]:
        """Every distinct chunk of the build with its size."""
        return {ref.sha256: ref.size for f in self.files for ref in f.chunks}

    def chunks_beyond(self, previous: Manifest | None) -> dict[str, int]:
        """The distinct chunks of the files that are not, content and chunk list alike, a file of `previous` (all
        of them without one): what a push since `previous` may have to upload, and its commit to check is stored.
        Per file, not per chunk: at 100 GB with 1 GB changed, 1% of 1.6 million chunks is looked at."""
        if previous is None:
            return self.chunk_sizes()
        before = {f.sha256: f.chunks for f in previous.files}
        return {
            ref.sha256: ref.size
            for f in self.files
            if before.get(f.sha256) != f.chunks  # two tuples compared in C
            for ref in f.chunks
        }

    def to_json(self) -> dict[str, object]:
        links = {"links": [{"path": e.path, "target": e.target} for e in sorted(self.links, key=lambda e: e.path)]}
        return {
            "format": LINKS_FORMAT if self.links else FORMAT_VERSION,
            **(links if self.links else {}),
            "game": self.game,
            "version": self.version,
            "chunking": self.chunking.to_json(),
            "files": [
                {
                    "path": f.path,
                    "size": f.size,
                    "executable": f.executable,
                    "sha256": f.sha256,
                    "chunks": [[c.sha256, c.size] for c in f.chunks],
                }
                for f in sorted(self.files, key=lambda f: f.path)
            ],
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def digest(self) -> str:
        """The manifest's identity: SHA-256 of its canonical bytes."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def canonical_json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _reject(why: str) -> ManifestError:
    return ManifestError(f"{why}; the build was rejected")


def _file_from_json(obj: object, params: ChunkingParams) -> FileEntry:
    if not isinstance(obj, dict) or set(obj) != _FILE_KEYS:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise _reject(f"manifest file entry must have exactly the keys {sorted(_FILE_KEYS)} (got {keys})")
    path, size, executable, sha, chunks = (obj[k] for k in ("path", "size", "executable", "sha256", "chunks"))
    if type(size) is not int or size < 0:
        raise _reject(f"file {path!r} has an invalid size {size!r}")
    if type(executable) is not bool:
        raise _reject(f"file {path!r} has a non-boolean executable flag")
    if not isinstance(sha, str) or not _HEX64.match(sha):
        raise _reject(f"file {path!r} has an invalid sha256 {sha!r}")
    if not isinstance(chunks, list):
        raise _reject(f"file {path!r} has a malformed chunk list")
    refs = _chunks_at_once(chunks, params)
    if refs is None:  # something is wrong: find what, chunk by chunk, to say it
        refs = _chunks_one_by_one(path, chunks, params)
    total = sum(map(_size_of, refs))
    if total != size:
        raise _reject(f"file {path!r} says {size} bytes but its chunks add up to {total}")
    return FileEntry(path, size, executable, sha, tuple(refs))


_new_ref = partial(tuple.__new__, ChunkRef)  # a ChunkRef from a checked [sha256, size], made in C
_size_of = itemgetter(1)


def _chunks_at_once(chunks: list[object], params: ChunkingParams) -> list[ChunkRef] | None:
    """The chunk list checked in bulk (C loops over the whole list, not Python ones per chunk: a 100 GB build has
    1.6 million chunks); None if any chunk is malformed, for `_chunks_one_by_one` to say which."""
    if not chunks:
        return []
    if set(map(type, chunks)) != {list} or set(map(len, chunks)) != {2}:  # type: ignore[arg-type]  # len() is reached only once all are lists
        return None
    hashes, sizes = zip(*chunks)
    if set(map(type, hashes)) != {str} or set(map(len, hashes)) != {64} or not _HEXES.match("".join(hashes)):
        return None
    if set(map(type, sizes)) != {int} or min(sizes) <= 0 or max(sizes) > params.max_size:
        return None
    return list(map(_new_ref, chunks))


def _chunks_one_by_one(path: object, chunks: list[object], params: ChunkingParams) -> list[ChunkRef]:
    refs = []
    for item in chunks:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not _HEX64.match(item[0])
            or type(item[1]) is not int
        ):
            raise _reject(f"file {path!r} has a malformed chunk {item!r}")
        if not 0 < item[1] <= params.max_size:
            raise _reject(f"file {path!r} has a chunk of {item[1]} bytes, outside 1..{params.max_size}")
        refs.append(ChunkRef(item[0], item[1]))
    return refs


def _link_from_json(obj: object) -> LinkEntry:
    if not isinstance(obj, dict) or set(obj) != _LINK_KEYS or not all(isinstance(v, str) for v in obj.values()):
        raise _reject(f"manifest link entry must have exactly the keys {sorted(_LINK_KEYS)}, both strings (got {obj!r})")
    return LinkEntry(obj["path"], obj["target"])


def from_json(obj: object) -> Manifest:
    """Build a Manifest from decoded JSON, validating every field and path."""
    if isinstance(obj, dict) and obj.get("format") not in (FORMAT_VERSION, LINKS_FORMAT):
        raise ManifestError(
            f"manifest format {obj.get('format')!r} is not supported (this Mist reads formats {FORMAT_VERSION} and "
            f"{LINKS_FORMAT}); update Mist"
        )
    expected = _TOP_KEYS | ({"links"} if isinstance(obj, dict) and obj.get("format") == LINKS_FORMAT else set())
    if not isinstance(obj, dict) or set(obj) != expected:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise _reject(f"manifest must have exactly the keys {sorted(expected)} (got {keys})")
    game, version = obj["game"], obj["version"]
    if not isinstance(game, str) or not SLUG_RE.match(game):
        raise _reject(f"manifest game must be a slug like 'hollow' (got {game!r})")
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise _reject(f"manifest version must be like '1.0.2' (got {version!r})")
    params = ChunkingParams.from_json(obj["chunking"])
    files_json = obj["files"]
    if not isinstance(files_json, list) or len(files_json) > MAX_FILES:
        raise _reject("manifest files must be a list of at most a million entries")
    files = tuple(_file_from_json(f, params) for f in files_json)
    validate_tree(f.path for f in files)
    links: tuple[LinkEntry, ...] = ()
    if obj["format"] == LINKS_FORMAT:
        links_json = obj["links"]
        if not isinstance(links_json, list) or not links_json or len(links_json) + len(files) > MAX_FILES:
            raise _reject("manifest links must be a non-empty list, with the files at most a million entries")
        links = tuple(_link_from_json(e) for e in links_json)
        validate_links((f.path for f in files), links)
    return Manifest(game, version, params, files, links)


def parse(data: bytes) -> Manifest:
    """Parse canonical manifest bytes; non-canonical encodings are rejected so a build has one identity."""
    with _no_cycle_collection():
        try:
            obj = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, and numbers of more than 4,300 digits
            raise _reject(f"manifest is not valid UTF-8 JSON ({exc})") from exc
        manifest = from_json(obj)
        # from_json accepted exactly the keys and types to_json writes, so the decoded object re-encodes to the
        # canonical bytes if and only if its lists are in canonical order too (cheaper than to_json again).
        in_order = all(a.path < b.path for a, b in zip(manifest.files, manifest.files[1:])) and all(
            a.path < b.path for a, b in zip(manifest.links, manifest.links[1:])
        )
        if not in_order or not _encodes_to(obj, data):
            raise _reject("manifest is not in canonical form (sorted keys, files sorted by path, no spaces)")
    return manifest


def _encodes_to(obj: dict[str, object], data: bytes) -> bool:
    """canonical_json(obj) == data, compared a file entry at a time: the whole re-encoding of a 100 GB build's
    manifest would take another 250 MB at the parse's peak."""
    files = obj["files"]
    assert isinstance(files, list), "from_json checked it"
    head = canonical_json({**obj, "files": []})
    # Only the top-level key can read '"files":[]' here: the keys before it hold no strings a quote could end.
    cut = head.index(b'"files":[]') + len(b'"files":[')
    view, at = memoryview(data), cut
    if view[:cut] != head[:cut]:
        return False
    for i, entry in enumerate(files):
        piece = (b"," if i else b"") + canonical_json(entry)
        if view[at : at + len(piece)] != piece:
            return False
        at += len(piece)
    return view[at:] == head[cut:]


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Millions of new lists and tuples, none of them garbage, would set the cycle collector off again and again
    (at 100 GB it took most of the parse); it runs as usual once they are all made."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
