"""Test helper: put a file's chunks into a chunk store, as a push would, and return its manifest entry."""

from __future__ import annotations

from shared import compression
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.chunkstore import ChunkStore
from shared.manifest import FileEntry


def store_file(store: ChunkStore, path: str, data: bytes) -> FileEntry:
    chunked = chunk_bytes(data, DEFAULT_PARAMS)
    offset = 0
    for ref in chunked.chunks:
        store.put(ref.sha256, compression.compress(data[offset : offset + ref.size]))
        offset += ref.size
    return FileEntry(path, chunked.size, False, chunked.sha256, chunked.chunks)
