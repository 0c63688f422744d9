"""Content-defined chunking (FastCDC) of build files into SHA-256-named chunks.

Content-defined cut points survive insertions and deletions, so a file edited
in place shares most of its chunks with the previous version. The parameters
are recorded in every manifest; see docs/DECISIONS.md for why these defaults.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from pyfastcdc import FastCDC

from shared.errors import ManifestError

ALGORITHM = "fastcdc2020"


@dataclass(frozen=True)
class ChunkingParams:
    """FastCDC parameters; pyfastcdc's mean chunk is about avg + min bytes."""

    min_size: int = 16 * 1024
    avg_size: int = 64 * 1024
    max_size: int = 256 * 1024
    normalization: int = 1

    def to_json(self) -> dict[str, object]:
        return {
            "algorithm": ALGORITHM,
            "min": self.min_size,
            "avg": self.avg_size,
            "max": self.max_size,
            "normalization": self.normalization,
        }

    @classmethod
    def from_json(cls, obj: object) -> "ChunkingParams":
        if not isinstance(obj, dict) or set(obj) != {"algorithm", "min", "avg", "max", "normalization"}:
            raise ManifestError(f"manifest chunking parameters are malformed (got {obj!r}); the build was rejected")
        if obj["algorithm"] != ALGORITHM:
            raise ManifestError(
                f"manifest uses chunking {obj['algorithm']!r}, this version knows only {ALGORITHM!r}; update Mist"
            )
        values = [obj[k] for k in ("min", "avg", "max", "normalization")]
        if not all(type(v) is int for v in values):
            raise ManifestError(f"manifest chunking parameters must be integers (got {obj!r}); the build was rejected")
        params = cls(min_size=obj["min"], avg_size=obj["avg"], max_size=obj["max"], normalization=obj["normalization"])
        if not (64 <= params.min_size <= params.avg_size <= params.max_size <= 16 * 1024 * 1024):
            raise ManifestError(f"manifest chunking sizes are out of range (got {obj!r}); the build was rejected")
        if params.normalization not in (0, 1, 2, 3):
            raise ManifestError(f"manifest chunking normalization must be 0-3 (got {obj!r}); the build was rejected")
        return params


DEFAULT_PARAMS = ChunkingParams()


class ChunkRef(NamedTuple):
    """One chunk of a file: its SHA-256 (hex) and its uncompressed size.

    A named tuple, not a dataclass: a 100 GB build has 1.6 million of them, and a tuple is made in a
    fraction of the time and memory (docs/DECISIONS.md, issue 20).
    """

    sha256: str
    size: int


@dataclass(frozen=True)
class ChunkedFile:
    """What chunking one file yields: the whole-file hash and its ordered chunks."""

    size: int
    sha256: str
    chunks: tuple[ChunkRef, ...]


def _chunker(params: ChunkingParams) -> FastCDC:
    return FastCDC(
        params.avg_size,
        min_size=params.min_size,
        max_size=params.max_size,
        normalized_chunking=params.normalization,  # type: ignore[arg-type]  # fastcdc's stub says bool; it takes the level 0-3
    )


def chunk_bytes(data: bytes | memoryview, params: ChunkingParams = DEFAULT_PARAMS) -> ChunkedFile:
    """Chunk an in-memory buffer (tests, small files)."""
    whole = hashlib.sha256(data)
    refs = (
        tuple(ChunkRef(hashlib.sha256(c.data).hexdigest(), c.length) for c in _chunker(params).cut_buf(data)) if len(data) else ()
    )
    return ChunkedFile(len(data), whole.hexdigest(), refs)


def chunk_file(path: Path, params: ChunkingParams = DEFAULT_PARAMS) -> ChunkedFile:
    """Chunk a file on disk via mmap; hashlib releases the GIL, so threads can chunk files in parallel."""
    size = os.path.getsize(path)
    if size == 0:
        return ChunkedFile(0, hashlib.sha256(b"").hexdigest(), ())
    whole = hashlib.sha256()
    refs = []
    for c in _chunker(params).cut_file(str(path)):
        whole.update(c.data)
        refs.append(ChunkRef(hashlib.sha256(c.data).hexdigest(), c.length))
    return ChunkedFile(size, whole.hexdigest(), tuple(refs))
