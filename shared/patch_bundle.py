"""Patch bundles: one object that turns several files of an old build into their new contents at once.

Many small files patched one by one each pay a header, a pack record and a
compressor that starts cold; their patches share a lot (the same toolchain's
code, the same formats). A bundle is one HDiffPatch delta from the old files
laid end to end to the new ones laid end to end, so lzma sees them all as one
stream and a match may reach into any other old file. Measured on panda3d's
188 changed files under 1 MiB: 0.98 MB as one bundle against 1.22 MB as
per-file patches (docs/PERFORMANCE.md).

    MISTBNDL, version (1 byte), count (4 bytes),
    count x (source SHA-256, source size (8 bytes), target SHA-256, target size (8 bytes)),
    the HDiffPatch payload.

Like a patch object it is named by the SHA-256 of its bytes and stored like a
chunk; the seeder serves it under a ticket only if every target it lists is a
file of the ticket's build. The client checks every target it makes against
the listing and then, as every staged file, against the signed manifest.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from shared import patch
from shared.errors import PatchError

ALGORITHM = "bundle"  # its rows' algorithm in the tracker's table of patches
MAGIC = b"MISTBNDL"
VERSION = 1
_START = struct.Struct(">8sBI")
_MEMBER = struct.Struct(">32sQ32sQ")
START_SIZE = _START.size
MAX_MEMBERS = 4096
MAX_MEMBER_FILE = 1024 * 1024  # larger files gain little from a neighbour's context and come as their own patches
MAX_TOTAL = 64 * 1024 * 1024  # of the targets, and of the sources: the client holds both (and the result) in memory


@dataclass(frozen=True)
class Member:
    """One file a bundle makes: from the old content `source` to the new content `target`."""

    source: str
    source_size: int
    target: str
    target_size: int


def listing_size(count: int) -> int:
    """Bytes from the start of a bundle to the end of its listing of `count` members."""
    return START_SIZE + count * _MEMBER.size


def is_bundle(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


def read_count(prefix: bytes) -> int:
    """How many members a bundle lists, from its first START_SIZE bytes; PatchError if it is not a bundle."""
    if len(prefix) < START_SIZE:
        raise PatchError("patch bundle is shorter than its header")
    magic, version, listed = _START.unpack_from(prefix)
    count = int(listed)
    if magic != MAGIC or version != VERSION:
        raise PatchError("object is not a Mist patch bundle of a version this program reads")
    if not 1 <= count <= MAX_MEMBERS:
        raise PatchError(f"patch bundle lists {count} files; a bundle holds 1 to {MAX_MEMBERS}")
    return count


def read_members(prefix: bytes) -> tuple[Member, ...]:
    """The files a bundle makes, from its first `listing_size` bytes (the seeder reads no more)."""
    count = read_count(prefix)
    if len(prefix) < listing_size(count):
        raise PatchError("patch bundle is shorter than its listing")
    members = []
    for i in range(count):
        source, source_size, target, target_size = _MEMBER.unpack_from(prefix, START_SIZE + i * _MEMBER.size)
        members.append(Member(source.hex(), source_size, target.hex(), target_size))
    if sum(m.target_size for m in members) > MAX_TOTAL or sum(m.source_size for m in members) > MAX_TOTAL:
        raise PatchError(f"patch bundle makes or reads more than {MAX_TOTAL} bytes; bundles are smaller")
    return tuple(members)


def make(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The bundle turning each (old content, new content) into the new one, in this order."""
    if not 1 <= len(pairs) <= MAX_MEMBERS:
        raise ValueError(f"a bundle holds 1 to {MAX_MEMBERS} files, not {len(pairs)}")
    listing = [_START.pack(MAGIC, VERSION, len(pairs))]
    for source, target in pairs:
        listing.append(_MEMBER.pack(hashlib.sha256(source).digest(), len(source), hashlib.sha256(target).digest(), len(target)))
    payload = patch.hdiff_payload(b"".join(s for s, _ in pairs), b"".join(t for _, t in pairs))
    return b"".join(listing) + payload


def apply(obj: bytes, sources: Sequence[bytes]) -> list[bytes]:
    """Every member's new content, in the listing's order, each checked against its SHA-256 and size.

    `sources` are the members' old contents in the same order; PatchError if any is not the content listed,
    or if anything the bundle makes is not what it lists."""
    members = read_members(obj)
    if len(sources) != len(members):
        raise PatchError(f"patch bundle has {len(members)} files, {len(sources)} given")
    for member, source in zip(members, sources):
        if len(source) != member.source_size or hashlib.sha256(source).hexdigest() != member.source:
            raise PatchError(f"a local file is not the content this bundle starts from ({member.source[:12]})")
    made = patch.hdiff_apply(b"".join(sources), obj[listing_size(len(members)) :], sum(m.target_size for m in members))
    out, at = [], 0
    for member in members:
        piece = made[at : at + member.target_size]
        at += member.target_size
        if hashlib.sha256(piece).hexdigest() != member.target:
            raise PatchError(f"patch bundle produced a file that is not {member.target[:12]}")
        out.append(piece)
    return out
