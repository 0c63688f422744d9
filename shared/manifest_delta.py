"""A manifest sent as the difference from one the receiver already holds.

A 100 GB build's manifest is 123 MB of JSON (63 MB gzipped); the next version's differs from it by a few
hundred KB when 100 MB of the game changed. The delta is `zstd --patch-from` of the new manifest's
canonical bytes against the old one's (bench/big_builds.py measured the options: docs/DECISIONS.md). It is
not trusted for anything: the receiver rebuilds the exact canonical bytes, and those are what it checks
against the build's digest and the tracker's signature, as it would a manifest sent whole. So every build
keeps its digest and signature, and any manifest format (1, 2, and later ones) travels this way.

Wire form: MAGIC, the base's SHA-256, the target's SHA-256, the target's size (8 bytes, big-endian), then
the zstd frame.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from shared.errors import ManifestError, PatchError
from shared.patch import zstd_delta, zstd_undelta

MAGIC = b"MISTMDL1"
_HEADER = struct.Struct(">8s32s32sQ")
HEADER_SIZE = _HEADER.size
LEVEL = 3  # bench/big_builds.py: higher levels gain little on hex hashes and cost seconds at 100 GB
MAX_TARGET = 256 * 1024 * 1024  # the tracker takes no larger manifest (tracker/routes/builds.py MAX_MANIFEST)
CONTENT_TYPE = "application/x-mist-manifest-delta"


@dataclass(frozen=True)
class Header:
    base: str
    target: str
    target_size: int


def make(base: bytes, target: bytes, level: int = LEVEL) -> bytes:
    """The delta that turns manifest bytes `base` into `target`."""
    header = _HEADER.pack(MAGIC, hashlib.sha256(base).digest(), hashlib.sha256(target).digest(), len(target))
    return header + zstd_delta(base, target, level)


def read_header(delta: bytes) -> Header:
    if len(delta) < HEADER_SIZE:
        raise ManifestError("the manifest delta is shorter than its header; fetch the whole manifest")
    magic, base, target, size = _HEADER.unpack_from(delta)
    if magic != MAGIC:
        raise ManifestError("the tracker sent something that is not a Mist manifest delta; fetch the whole manifest")
    return Header(base.hex(), target.hex(), size)


def apply(base: bytes, delta: bytes, expect: str) -> bytes:
    """The target manifest's bytes, which hash to `expect` (the digest asked for); ManifestError if anything differs.

    The caller still checks the tracker's signature over the result, exactly as for a manifest sent whole.
    """
    header = read_header(delta)
    if header.target != expect:
        raise ManifestError(f"the manifest delta makes build {header.target[:12]}, not {expect[:12]} that was asked for")
    if hashlib.sha256(base).hexdigest() != header.base:
        raise ManifestError(f"the manifest delta starts from build {header.base[:12]}, which is not the one held here")
    if header.target_size > MAX_TARGET:
        raise ManifestError(f"the manifest delta makes {header.target_size} bytes, more than any manifest may weigh")
    try:
        out = zstd_undelta(base, delta[HEADER_SIZE:], header.target_size)
    except PatchError as exc:
        raise ManifestError(f"the manifest delta does not apply ({exc}); fetch the whole manifest") from exc
    if len(out) != header.target_size or hashlib.sha256(out).hexdigest() != expect:
        raise ManifestError(f"the manifest delta did not rebuild build {expect[:12]}; fetch the whole manifest")
    return out
