"""Checks the seeder makes before trusting or serving bytes (pure: no I/O, no web framework)."""

from __future__ import annotations

import hashlib

from shared import compression
from shared.errors import ChunkCorrupt, PackError
from shared.pack import Record

MAX_CHUNK = 16 * 1024 * 1024


def verify_upload(record: Record) -> None:
    """An uploaded chunk must be one zstd frame declaring its size, decompressing to bytes that hash to its name."""
    if record.kind != 0:
        raise PackError("an upload pack may contain only CHUNK records")
    size = compression.content_size(record.payload)
    if not 0 < size <= MAX_CHUNK:
        raise ChunkCorrupt(
            f"chunk {record.sha256[:12]} must be a zstd frame that declares its size (1..{MAX_CHUNK}); it was refused",
            record.sha256,
        )
    data = compression.decompress(record.payload, size, record.sha256)
    actual = hashlib.sha256(data).hexdigest()
    if actual != record.sha256:
        raise ChunkCorrupt(
            f"chunk named {record.sha256[:12]} hashes to {actual[:12]}; the upload was corrupted, push again",
            record.sha256,
        )
