"""librsync signatures and deltas, for local files that match no known content (pyrsync lives only here).

A friend's modded or damaged file is not any build's content, so no stored
patch starts from it. The client sends the file's signature (about 1% of its
size); the seeder answers with an rdiff delta from it to the build's file.
The formats are librsync 2's, the same as Debian's `rdiff` command.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pyrsync

from shared.errors import PatchError


# A delta request on the wire: the target file's SHA-256, the most bytes the answer may take
# (what fetching the file's chunks would cost), then the signature.
_REQUEST = struct.Struct(">32sQ")


def encode_request(target: str, budget: int, sig: bytes) -> bytes:
    return _REQUEST.pack(bytes.fromhex(target), budget) + sig


def decode_request(body: bytes) -> tuple[str, int, bytes]:
    if len(body) < _REQUEST.size:
        raise PatchError("a delta request is the target file's SHA-256, a byte budget, then a librsync signature")
    target, budget = _REQUEST.unpack_from(body)
    return target.hex(), budget, body[_REQUEST.size :]


def signature(path: Path) -> bytes:
    """The librsync signature of a local file (BLAKE2 strong sums, block size librsync picks for its size)."""
    size = path.stat().st_size
    _magic, block_len, strong_len = pyrsync.get_signature_args(size)
    out = io.BytesIO()
    with open(path, "rb") as f:
        pyrsync.signature(f, out, strong_len, pyrsync.RS_BLAKE2_SIG_MAGIC, block_len)
    return out.getvalue()


def delta(sig: bytes, target: bytes) -> bytes:
    """The delta that turns the file the signature describes into `target`."""
    out = io.BytesIO()
    try:
        pyrsync.delta(io.BytesIO(target), io.BytesIO(sig), out)
    except Exception as exc:  # pyrsync raises librsync's errors as plain exceptions
        raise PatchError(f"the signature could not be read ({exc}); send it again") from exc
    return out.getvalue()


class _Bounded(io.BytesIO):
    """An output that refuses to grow past the size the result must have: a delta of a few COPY
    commands could otherwise ask for any amount of memory."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: bytes) -> int:  # type: ignore[override]  # a sink that takes bytes only, not any buffer
        if self.tell() + len(data) > self.limit:
            raise PatchError(f"the delta makes a file larger than the {self.limit} bytes expected")
        return super().write(data)


def patch(basis: Path, delta_bytes: bytes, size: int) -> bytes:
    """Apply a delta to a local file, making at most `size` bytes; the caller checks the result's SHA-256."""
    out = _Bounded(size)
    try:
        with open(basis, "rb") as f:
            pyrsync.patch(f, io.BytesIO(delta_bytes), out)
    except (OSError, PatchError):
        raise
    except Exception as exc:
        raise PatchError(f"the delta does not apply to {basis.name} ({exc})") from exc
    return out.getvalue()
