"""A manifest sent as the difference from one the receiver already holds.

A 100 GB build's manifest is 123 MB of JSON (63 MB gzipped); the next version's differs from it by a few
hundred KB when 100 MB of the game changed. The delta is `zstd --patch-from` of the new manifest's
canonical bytes against the old one's (bench/big_builds.py measured the options: docs/DECISIONS.md). It is
not trusted for anything: the receiver rebuilds the exact canonical bytes, and those are what it checks
against the build's digest and the tracker's signature, as it would a manifest sent whole. So every build
keeps its digest and signature, and any manifest format (1, 2, and later ones) travels this way.

Wire form: MAGIC, the base's SHA-256, the target's SHA-256, the target's size (8 bytes, big-endian), then
the zstd frame.

The entries form (`make_entries`, MAGIC2, asked for with `?delta=entries`) is what a friend's update reads:
the new manifest as runs of the held one's file entries copied as they are, file entries patched from the
held entry of the same path, and literal bytes (the head, commas, new entries, the tail). The friend applies it
from the held manifest's file to the new one's (`apply_to_file`) holding neither whole, and the structure
says which entries are the held ones, so the new build's index is made from the held index without reading
either manifest (shared/build_index.py `BuildIndex.from_rebuilt`). At 100 GB the whole-manifest form needs
both manifests in memory (248 MB); this form needs the changed entries. Its result is checked the same way.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from shared import compression
from shared.errors import ChunkCorrupt, ManifestError, PatchError
from shared.patch import zstd_delta, zstd_undelta

MAGIC = b"MISTMDL1"
MAGIC2 = b"MISTMDL2"
ENTRIES = "entries"  # the query's `delta=` that asks for the entries form
_COPY, _LITERAL, _PATCHED = b"C", b"D", b"P"
_COPY_OP = struct.Struct(">QQ")  # old offset, length
_LITERAL_OP = struct.Struct(">II")  # length, compressed length (then the zstd frame)
_PATCHED_OP = struct.Struct(">QQII")  # old offset, old length, new length, patch length (then zstd --patch-from)
_PIECE = 1 << 20  # copied a MiB at a time
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
    entries: bool = False  # the entries form (MAGIC2)


def make(base: bytes, target: bytes, level: int = LEVEL) -> bytes:
    """The delta that turns manifest bytes `base` into `target`."""
    header = _HEADER.pack(MAGIC, hashlib.sha256(base).digest(), hashlib.sha256(target).digest(), len(target))
    return header + zstd_delta(base, target, level)


def read_header(delta: bytes) -> Header:
    if len(delta) < HEADER_SIZE:
        raise ManifestError("the manifest delta is shorter than its header; fetch the whole manifest")
    magic, base, target, size = _HEADER.unpack_from(delta)
    if magic not in (MAGIC, MAGIC2):
        raise ManifestError("the tracker sent something that is not a Mist manifest delta; fetch the whole manifest")
    return Header(base.hex(), target.hex(), size, magic == MAGIC2)


def apply(base: bytes, delta: bytes, expect: str) -> bytes:
    """The target manifest's bytes, which hash to `expect` (the digest asked for); ManifestError if anything differs.

    The caller still checks the tracker's signature over the result, exactly as for a manifest sent whole.
    """
    header = read_header(delta)
    if header.entries:
        raise ManifestError("a manifest delta of entries is applied to files (apply_to_file); fetch the whole manifest")
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


# ---- the entries form ---------------------------------------------------------------------------


@dataclass
class Rebuilt:
    """What `apply_to_file` wrote, by where each part came from: `copies` (new offset, old offset, length) of
    the held manifest's bytes and `literals` (new offset, bytes) made from the delta, both in order."""

    size: int = 0
    copies: list[tuple[int, int, int]] = field(default_factory=list)
    literals: list[tuple[int, bytes]] = field(default_factory=list)


class _Ops:
    """The entries form's operations as they are made; neighbouring copies and literals are joined."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self._copy: tuple[int, int] | None = None
        self._literal: list[bytes] = []

    def copy(self, offset: int, length: int) -> None:
        self._flush_literal()
        if self._copy is not None and self._copy[0] + self._copy[1] == offset:
            self._copy = (self._copy[0], self._copy[1] + length)
            return
        self._flush_copy()
        self._copy = (offset, length)

    def literal(self, data: bytes) -> None:
        if data:
            self._flush_copy()
            self._literal.append(data)

    def patched(self, old: bytes, offset: int, new: bytes, level: int) -> None:
        """The new entry from the old one at `offset`, as a patch when that is smaller than the entry itself."""
        patch = zstd_delta(old, new, level)
        if len(patch) >= len(compression.compress(new, level)):
            self.literal(new)
            return
        self._flush_copy()
        self._flush_literal()
        self.parts += [_PATCHED, _PATCHED_OP.pack(offset, len(old), len(new), len(patch)), patch]

    def _flush_copy(self) -> None:
        if self._copy is not None:
            self.parts += [_COPY, _COPY_OP.pack(*self._copy)]
            self._copy = None

    def _flush_literal(self) -> None:
        if self._literal:
            data = b"".join(self._literal)
            packed = compression.compress(data, LEVEL)
            self.parts += [_LITERAL, _LITERAL_OP.pack(len(data), len(packed)), packed]
            self._literal = []

    def done(self) -> bytes:
        self._flush_copy()
        self._flush_literal()
        return b"".join(self.parts)


def make_entries(base: bytes, target: bytes, level: int = LEVEL) -> bytes:
    """The entries form turning manifest bytes `base` into `target`; the whole-manifest form (`make`) when either
    is not a canonical manifest this can cut into entries (both are read by `read_header`'s caller)."""
    from shared.build_index import entry_paths, entry_spans

    before, after = entry_spans(base), entry_spans(target)
    if before is None or after is None:
        return make(base, target, level)
    old_paths = entry_paths(base, before)
    new_paths = entry_paths(target, after)
    if old_paths is None or new_paths is None:
        return make(base, target, level)
    old_at = {path: i for i, path in enumerate(old_paths)}
    ops, written = _Ops(), 0
    previous = -2  # the old entry copied last (-2: none), so a run of them is one copy, commas and all
    for j, (a, b) in enumerate(after):
        i = old_at.get(new_paths[j], -1)
        same = i >= 0 and before[i][1] - before[i][0] == b - a and base[before[i][0] : before[i][1]] == target[a:b]
        joins = i > 0 and i == previous + 1 and written == a - 1 and before[i][0] - 1 == before[i - 1][1]
        if same and joins and base[before[i][0] - 1] == target[a - 1]:
            ops.copy(before[i - 1][1], before[i][1] - before[i - 1][1])  # the comma between, then the entry
        else:
            ops.literal(target[written:a])  # the head, or the comma before this entry
            if same:
                ops.copy(before[i][0], b - a)
            elif i >= 0:
                ops.patched(base[before[i][0] : before[i][1]], before[i][0], target[a:b], level)
            else:
                ops.literal(target[a:b])
        previous, written = (i if same else -2), b
    ops.literal(target[written:])
    header = _HEADER.pack(MAGIC2, hashlib.sha256(base).digest(), hashlib.sha256(target).digest(), len(target))
    return header + ops.done()


def apply_to_file(base: BinaryIO, delta: bytes, expect: str, out: BinaryIO) -> Rebuilt:
    """Write the target manifest's bytes to `out` from the held manifest in `base` (a file), holding neither
    whole; ManifestError unless they are exactly `expect`'s (the digest asked for). The caller still checks
    the tracker's signature of that digest, as for a manifest sent whole, and `base` is not trusted: a held
    file damaged on disk makes bytes that do not hash to `expect`."""
    header = read_header(delta)
    if not header.entries:
        raise ManifestError("not a manifest delta of entries; fetch the whole manifest")
    if header.target != expect:
        raise ManifestError(f"the manifest delta makes build {header.target[:12]}, not {expect[:12]} that was asked for")
    if header.target_size > MAX_TARGET:
        raise ManifestError(f"the manifest delta makes {header.target_size} bytes, more than any manifest may weigh")
    made, digest, at = Rebuilt(), hashlib.sha256(), HEADER_SIZE
    view = memoryview(delta)

    def emit(data: bytes) -> None:
        if made.size + len(data) > header.target_size:
            raise ManifestError("the manifest delta makes more bytes than it declares; fetch the whole manifest")
        out.write(data)
        digest.update(data)
        made.size += len(data)

    def held(offset: int, length: int) -> bytes:
        base.seek(offset)
        data = base.read(length)
        if len(data) != length:
            raise ManifestError("the manifest delta reads past the end of the held manifest; fetch the whole manifest")
        return data

    try:
        while at < len(delta):
            kind = delta[at : at + 1]
            at += 1
            if kind == _COPY:
                offset, length = _COPY_OP.unpack_from(delta, at)
                at += _COPY_OP.size
                if made.size + length > header.target_size:
                    raise ManifestError("the manifest delta makes more bytes than it declares; fetch the whole manifest")
                made.copies.append((made.size, offset, length))
                for start in range(offset, offset + length, _PIECE):
                    emit(held(start, min(_PIECE, offset + length - start)))
            elif kind == _LITERAL:
                length, packed = _LITERAL_OP.unpack_from(delta, at)
                at += _LITERAL_OP.size
                if made.size + length > header.target_size or at + packed > len(delta):
                    raise ManifestError("the manifest delta is damaged; fetch the whole manifest")
                data = compression.decompress(view[at : at + packed], length)
                at += packed
                made.literals.append((made.size, data))
                emit(data)
            elif kind == _PATCHED:
                offset, old_length, length, packed = _PATCHED_OP.unpack_from(delta, at)
                at += _PATCHED_OP.size
                if made.size + length > header.target_size or at + packed > len(delta):
                    raise ManifestError("the manifest delta is damaged; fetch the whole manifest")
                data = zstd_undelta(held(offset, old_length), delta[at : at + packed], length)
                at += packed
                if len(data) != length:
                    raise ManifestError("a patched entry of the manifest delta is not the size it declares")
                made.literals.append((made.size, data))
                emit(data)
            else:
                raise ManifestError("the manifest delta is damaged (an unknown operation); fetch the whole manifest")
    except (struct.error, ChunkCorrupt, PatchError) as exc:
        raise ManifestError(f"the manifest delta does not apply ({exc}); fetch the whole manifest") from exc
    if made.size != header.target_size or digest.hexdigest() != expect:
        raise ManifestError(f"the manifest delta did not rebuild build {expect[:12]}; fetch the whole manifest")
    return made
