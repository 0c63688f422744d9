"""A friend's daemon that misbehaves on every third chunk it serves, the first included (run as a script by
test_peers): `corrupt` sends a corrupt copy of the chunk; `garbage` breaks the peer wire protocol (its PIECE
names an encoding there is none of)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator

from client import peerwire, sharing
from client.cli import main

MODE = sys.argv.pop(1) if len(sys.argv) > 1 else "corrupt"
honest_read = sharing.Library.read
honest_fragments = peerwire.fragments
served = 0


def lying_read(self: sharing.Library, sha256: str) -> bytes | None:
    global served
    data = honest_read(self, sha256)
    served += 1
    if data is None or served % 3 != 1:
        return data
    return bytes([data[0] ^ 0xFF]) + data[1:]


def garbled_fragments(request_id: int, sha256: str, data: bytes, encoding: int = peerwire.RAW) -> Iterator[peerwire.Piece]:
    global served
    served += 1
    for piece in honest_fragments(request_id, sha256, data, encoding):
        yield piece if served % 3 != 1 else dataclasses.replace(piece, encoding=7)


if MODE == "garbage":
    sharing.fragments = garbled_fragments  # type: ignore[assignment]  # a stand-in of the same shape
else:
    sharing.Library.read = lying_read  # type: ignore[method-assign]  # the lie under test
sys.exit(main(["daemon", "--port", "0"]))
