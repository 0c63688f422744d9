"""The chunk pack: many chunks in one HTTP body, so a download is not one request per chunk.

A pack is a sequence of records, each a 37-byte header (1 byte kind, 32 bytes
SHA-256, 4 bytes big-endian length) and then `length` payload bytes, and ends
with an END record. The END record lets a reader tell a complete pack from one
cut off at a record boundary.

    CHUNK    payload is the zstd-compressed chunk
    MISSING  the sender does not have this chunk (length 0)
    END      no more records (hash and length zero)

A hash list (the body of a fetch or a "which are missing?" request) is the
32-byte hashes concatenated.

Reading, what the sender got wrong is a PackError (a RemoteProtocolError: the
seeder answers 400, the client asks again); writing, what we would get wrong
is a LocalProtocolError (a bug here: the seeder answers 500 and logs it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from shared.errors import LocalProtocolError, PackError

CHUNK = 0
MISSING = 1
END = 2
HEADER = struct.Struct(">B32sI")
HEADER_SIZE = HEADER.size
MAX_RECORD = 32 * 1024 * 1024


def answer_bound(sizes: Iterable[int]) -> int:
    """The most bytes an honest answer for objects of these (uncompressed) sizes can take: each one compressed
    (zstd never adds more than size/128 and a little), under its record header. A reader stops past it."""
    return sum(size + size // 128 + 64 + HEADER.size for size in sizes) + 4096


_ZERO = bytes(32)


@dataclass(frozen=True)
class Record:
    kind: int
    sha256: str
    payload: bytes | memoryview

    def __bytes__(self) -> bytes:
        return encode_header(self.kind, self.sha256, len(self.payload)) + bytes(self.payload)


def encode_header(kind: int, sha256: str, length: int) -> bytes:
    """A record header to send; LocalProtocolError for one no reader would take (our bug, not the reader's)."""
    try:
        digest = bytes.fromhex(sha256) if sha256 else _ZERO
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise LocalProtocolError(f"pack records are named by a SHA-256 (got {sha256[:70]!r})")
    if length > MAX_RECORD:
        raise LocalProtocolError(f"a pack record of {length} bytes passes the {MAX_RECORD}-byte limit readers keep")
    return HEADER.pack(kind, digest, length)


def end_record() -> bytes:
    return HEADER.pack(END, _ZERO, 0)


def parse_header(header: bytes) -> tuple[int, str, int]:
    """Decode one record header; raise PackError on anything a well-behaved sender would not send."""
    if len(header) != HEADER_SIZE:
        raise PackError(f"pack record header must be {HEADER_SIZE} bytes (got {len(header)}); the pack was truncated")
    kind, digest, length = HEADER.unpack(header)
    if kind not in (CHUNK, MISSING, END):
        raise PackError(f"pack record kind {kind} is unknown; the sender speaks another protocol")
    if length > MAX_RECORD:
        raise PackError(f"pack record of {length} bytes exceeds the {MAX_RECORD}-byte limit")
    if kind != CHUNK and length:
        raise PackError("pack MISSING/END record must not carry a payload")
    if kind == END and digest != _ZERO:
        raise PackError("pack END record must carry a zero hash")
    return kind, digest.hex() if kind != END else "", length


def encode(records: Iterable[Record]) -> bytes:
    return b"".join(bytes(r) for r in records) + end_record()


def iter_records(data: bytes | memoryview) -> Iterator[Record]:
    """Parse a whole pack held in memory; raise PackError if it is malformed or truncated."""
    view = memoryview(data)
    pos = 0
    while True:
        kind, sha, length = parse_header(bytes(view[pos : pos + HEADER_SIZE]))
        pos += HEADER_SIZE
        if kind == END:
            if pos != len(view):
                raise PackError("pack has bytes after its END record")
            return
        if pos + length > len(view):
            raise PackError(f"pack record for {sha[:12]} is cut short; the transfer was interrupted")
        yield Record(kind, sha, view[pos : pos + length])  # a view, not a copy: packs carry megabytes
        pos += length


def batches(hashes: Iterable[str], sizes: dict[str, int], max_bytes: int, max_count: int) -> Iterator[list[str]]:
    """Group chunks, in order, into requests of at most `max_bytes` (uncompressed) and `max_count` chunks."""
    batch: list[str] = []
    total = 0
    for h in hashes:
        if batch and (total + sizes[h] > max_bytes or len(batch) >= max_count):
            yield batch
            batch, total = [], 0
        batch.append(h)
        total += sizes[h]
    if batch:
        yield batch


def encode_hashes(hashes: Iterable[str]) -> bytes:
    return b"".join(bytes.fromhex(h) for h in hashes)


def decode_hashes(data: bytes | bytearray, limit: int) -> list[str]:
    if len(data) % 32:
        raise PackError(f"hash list must be a multiple of 32 bytes (got {len(data)})")
    if len(data) // 32 > limit:
        raise PackError(f"hash list names {len(data) // 32} chunks; at most {limit} per request")
    return [data[i : i + 32].hex() for i in range(0, len(data), 32)]
