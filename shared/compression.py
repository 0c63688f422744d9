"""zstd compression of chunks (python-zstandard lives only here).

Chunks are compressed once, at push time, and decompressed by every client, so
a high level pays for itself: decompression speed barely depends on it.
zstandard releases the GIL, so a thread pool compresses or decompresses in
parallel; its (de)compressor objects are not thread-safe, hence one per thread.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from collections.abc import Sequence

import zstandard

from shared.errors import ChunkCorrupt

DEFAULT_LEVEL = 9
_local = threading.local()


def compress(data: bytes | memoryview, level: int = DEFAULT_LEVEL) -> bytes:
    compressors = getattr(_local, "compressors", None)
    if compressors is None:
        compressors = _local.compressors = {}
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
    return compressor.compress(data)


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (they are not thread-safe)."""
    decompressor: zstandard.ZstdDecompressor | None = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def decompress(data: bytes | memoryview, expected_size: int, chunk_id: str = "") -> bytes:
    """Decompress a chunk whose size is known; anything else is a corrupt chunk."""
    try:
        out = _decompressor().decompress(data, max_output_size=expected_size, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ChunkCorrupt(f"chunk {chunk_id[:12]} does not decompress ({exc})", chunk_id) from exc
    if len(out) != expected_size:
        raise ChunkCorrupt(f"chunk {chunk_id[:12]} decompressed to {len(out)} bytes, expected {expected_size}", chunk_id)
    return out


def decompress_many(frames: Sequence[bytes | memoryview], sizes: Sequence[int]) -> list[memoryview] | None:
    """Decompress a batch of chunks of known sizes in one call, which releases the GIL once for all of them;
    None when the batch cannot be done whole (a frame is corrupt, or this backend lacks the call), and the
    caller then goes chunk by chunk with `decompress`, which says which.

    Unlike `decompress`, a frame followed by stray bytes passes here: its content is what the caller hashes
    against the chunk's name, so the stray bytes can cost only their transfer, never a wrong byte.
    """
    batch = getattr(_decompressor(), "multi_decompress_to_buffer", None)
    if (
        zstandard.backend != "cext"  # the cffi backend's (PyPy's) has the call, and raises NotImplementedError
        or batch is None
        or not frames
        or len(frames) != len(sizes)
        or not all(frames)
        or not all(sizes)
    ):
        return None  # python-zstandard crashes the process (SIGFPE) on an empty batch; an empty frame is corrupt
    try:
        out = batch(list(frames), decompressed_sizes=struct.pack(f"={len(sizes)}Q", *sizes))
    except (zstandard.ZstdError, ValueError):
        return None
    return [memoryview(out[i]) for i in range(len(out))]


def content_size(data: bytes | memoryview) -> int:
    """The uncompressed size a zstd frame declares, or -1 if it declares none."""
    try:
        return zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        return -1


def decompress_prefix(data: bytes | memoryview, size: int) -> bytes:
    """The first `size` bytes of a frame's content, without decompressing the rest (b"" if it is not zstd)."""
    try:
        with zstandard.ZstdDecompressor().stream_reader(data) as reader:
            return reader.read(size)
    except zstandard.ZstdError:
        return b""


def content_sha256(data: bytes | memoryview, piece: int = 1 << 20) -> str:
    """SHA-256 of a stored object's content, decompressed piece by piece (a patch object can be hundreds of MB).

    The object must be exactly one whole frame, as every reader of the store expects; anything else is corrupt.
    """
    view = memoryview(data)
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    digest = hashlib.sha256()
    try:
        for start in range(0, len(view), piece):
            if decompressor.eof:
                raise ChunkCorrupt("object has bytes after its zstd frame")
            digest.update(decompressor.decompress(view[start : start + piece]))
    except zstandard.ZstdError as exc:
        raise ChunkCorrupt(f"object does not decompress ({exc})") from exc
    if not decompressor.eof:
        raise ChunkCorrupt("object is cut short: its zstd frame does not end")
    if decompressor.unused_data:
        raise ChunkCorrupt("object has bytes after its zstd frame")
    return digest.hexdigest()
