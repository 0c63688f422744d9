"""Patch objects: a binary delta from one file content to another (hdiffpatch lives only here).

A patch object is a header naming the source and target file contents (their
SHA-256s and the target's size) followed by the delta. It is named by the
SHA-256 of its own bytes and stored compressed in the chunk store like a chunk,
so the store's integrity checks, the seeder's pack format and the client's
verification treat it like any other object. Because it is keyed by file
contents, not versions, one patch serves every pair of builds that share them.

Two kinds: HDiffPatch with lzma (the smallest patches we measured, made by
background jobs at about 3 MB/s) and a zstd dictionary delta (`zstd
--patch-from` at level 3: about 2.8 times larger, but made at about 100 MB/s,
so it can serve at once when a client asks for an uncommon jump).
"""

from __future__ import annotations

import hashlib
import importlib
import struct
from dataclasses import dataclass
from typing import Any

import hdiffpatch
import zstandard

from shared.errors import PatchError

# zstandard's cffi backend declares no exports, so its ffi and lib are reached as untyped attributes.
_cffi_backend: Any = importlib.import_module("zstandard.backend_cffi")
_ffi, _zstd = _cffi_backend.ffi, _cffi_backend.lib

MAGIC = b"MISTPTCH"
_HEADER = struct.Struct(">8sB32s32sQ")
HEADER_SIZE = _HEADER.size
MAX_TARGET = 256 * 1024 * 1024  # no patch is made into a larger file (its maker holds both files in memory)
HDIFF = "hdiff"
ZSTD_DICT = "zstd"
_KINDS = {HDIFF: 1, ZSTD_DICT: 2}
_NAMES = {code: name for name, code in _KINDS.items()}
QUICK_LEVEL = 3  # ~100 MB/s here: fast enough to make while a client waits for its plan
# Both kinds are compressed inside the patch (HDiffPatch with its own lzma at level 9: 7% smaller than its
# diff compressed by zstd -19, bench/results/patch_algorithms.md), so the store's frame only wraps them.
STORE_LEVEL = {HDIFF: 1, ZSTD_DICT: 1}
MAX_WINDOW_LOG = 31
# lzma's dictionary: the encoder needs ~10x it in memory, every client's decoder 1x; 64 MiB covers the diff
# of a 256 MiB file, the largest we patch (tracker/planner.py).
MAX_LZMA_WINDOW_LOG = 26


@dataclass(frozen=True)
class Header:
    algorithm: str
    source: str
    target: str
    target_size: int


def object_name(obj: bytes) -> str:
    return hashlib.sha256(obj).hexdigest()


def read_header(obj: bytes) -> Header:
    """The header of a patch object (only its first HEADER_SIZE bytes are needed)."""
    if len(obj) < HEADER_SIZE:
        raise PatchError("patch object is shorter than its header")
    magic, code, source, target, size = _HEADER.unpack_from(obj)
    if magic != MAGIC or code not in _NAMES:
        raise PatchError("object is not a Mist patch")
    return Header(_NAMES[code], source.hex(), target.hex(), size)


def _window_log(*sizes: int) -> int:
    """A window covering the source (the dictionary) and the target, as `zstd --patch-from` sets it."""
    return max(zstandard.WINDOWLOG_MIN, min(MAX_WINDOW_LOG, (sum(sizes) + 1).bit_length()))


def _zstd_call(code: int) -> int:
    if _zstd.ZSTD_isError(code):
        raise PatchError(f"zstd: {_ffi.string(_zstd.ZSTD_getErrorName(code)).decode()}")
    return code


def zstd_delta(source: bytes, target: bytes, level: int, tables: tuple[int, int] | None = None) -> bytes:
    """`zstd --patch-from`: the source as a raw prefix the target's matches may reach, long-distance matching on.

    python-zstandard's dictionaries index only part of a large dictionary, so this uses the libzstd its
    wheel bundles (through its cffi backend) for ZSTD_CCtx_refPrefix, exactly as the zstd command does.
    `tables` (hashLog, chainLog) overrides the level's match tables (bench/patch_algorithms.py tries larger).
    """
    cctx = _ffi.gc(_zstd.ZSTD_createCCtx(), _zstd.ZSTD_freeCCtx)
    _zstd_call(_zstd.ZSTD_CCtx_setParameter(cctx, _zstd.ZSTD_c_compressionLevel, level))
    _zstd_call(_zstd.ZSTD_CCtx_setParameter(cctx, _zstd.ZSTD_c_windowLog, _window_log(len(source), len(target))))
    if tables is not None:
        _zstd_call(_zstd.ZSTD_CCtx_setParameter(cctx, _zstd.ZSTD_c_hashLog, tables[0]))
        _zstd_call(_zstd.ZSTD_CCtx_setParameter(cctx, _zstd.ZSTD_c_chainLog, tables[1]))
    _zstd_call(_zstd.ZSTD_CCtx_setParameter(cctx, _zstd.ZSTD_c_enableLongDistanceMatching, 1))
    _zstd_call(_zstd.ZSTD_CCtx_refPrefix(cctx, _ffi.from_buffer(source), len(source)))
    bound = _zstd.ZSTD_compressBound(len(target))
    out = _ffi.new("char[]", bound)
    size = _zstd_call(_zstd.ZSTD_compress2(cctx, out, bound, _ffi.from_buffer(target), len(target)))
    return bytes(_ffi.buffer(out, size))


def zstd_undelta(source: bytes, payload: bytes, size: int) -> bytes:
    dctx = _ffi.gc(_zstd.ZSTD_createDCtx(), _zstd.ZSTD_freeDCtx)
    _zstd_call(_zstd.ZSTD_DCtx_setParameter(dctx, _zstd.ZSTD_d_windowLogMax, _window_log(len(source), size)))
    _zstd_call(_zstd.ZSTD_DCtx_refPrefix(dctx, _ffi.from_buffer(source), len(source)))
    out = _ffi.new("char[]", max(size, 1))
    written = _zstd_call(_zstd.ZSTD_decompressDCtx(dctx, out, size, _ffi.from_buffer(payload), len(payload)))
    return bytes(_ffi.buffer(out, written))


def make(source: bytes, target: bytes, algorithm: str = HDIFF, level: int = QUICK_LEVEL) -> bytes:
    """The patch object turning `source` into `target` (`level` is the zstd delta's level)."""
    if algorithm == HDIFF:
        payload = hdiff_payload(source, target)
    elif algorithm == ZSTD_DICT:
        payload = zstd_delta(source, target, level)
    else:
        raise ValueError(f"unknown patch algorithm {algorithm!r}")
    header = _HEADER.pack(MAGIC, _KINDS[algorithm], hashlib.sha256(source).digest(), hashlib.sha256(target).digest(), len(target))
    return header + payload


def hdiff_payload(source: bytes, target: bytes) -> bytes:
    """HDiffPatch's delta from `source` to `target`, compressed with its own lzma (a patch object's payload, and a
    bundle's: shared/patch_bundle.py)."""
    raw = hdiffpatch.diff(source, target, hdiffpatch.COMPRESSION_NONE, validate=False, big_cache_match=True)
    window = max(12, min(MAX_LZMA_WINDOW_LOG, (len(raw) + 1).bit_length()))
    return bytes(hdiffpatch.recompress(raw, hdiffpatch.LzmaConfig(level=9, window=window)))


def hdiff_apply(source: bytes, payload: bytes, target_size: int) -> bytes:
    """`target_size` bytes made from `source` by an HDiffPatch payload whose own sizes must say the same."""
    if hdiff_sizes(payload) != (target_size, len(source)):
        raise PatchError("the patch's own sizes disagree with its header or the local files")
    try:
        return bytes(hdiffpatch.apply(source, payload))
    except hdiffpatch.HDiffPatchError as exc:
        raise PatchError(f"the patch does not apply ({exc})") from exc


_HDIFF_MAGIC = b"HDIFF13&"


def hdiff_sizes(payload: bytes) -> tuple[int, int]:
    """(new size, old size) as an HDiffPatch payload declares them: after the magic and the compression's name,
    two numbers in 7-bit groups, most significant first, the high bit marking that another group follows."""
    if not payload.startswith(_HDIFF_MAGIC) or b"\0" not in payload[:64]:
        raise PatchError("the patch is not an HDiffPatch payload")
    at = payload.index(b"\0", len(_HDIFF_MAGIC)) + 1
    sizes = []
    for _ in range(2):
        value = 0
        for _ in range(10):
            if at >= len(payload):
                raise PatchError("the patch's header is truncated")
            byte = payload[at]
            at += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            raise PatchError("the patch's header declares an impossible size")
        sizes.append(value)
    return sizes[0], sizes[1]


def apply(obj: bytes, source: bytes, expect: tuple[str, int] | None = None) -> bytes:
    """The target content, checked against the header's SHA-256; PatchError if anything does not match.

    `expect` is the (SHA-256, size) the signed manifest gives the target: a patch that declares another is
    refused before anything is allocated for it (the header is not signed, and a size of 2^50 would be asked
    for), and so is an HDiffPatch payload whose own sizes disagree with the header or the source.
    """
    header = read_header(obj)
    if header.target_size > MAX_TARGET:
        raise PatchError(f"the patch makes a file of {header.target_size} bytes; patches serve files up to {MAX_TARGET}")
    if expect is not None and (header.target, header.target_size) != expect:
        raise PatchError(
            f"the patch makes {header.target[:12]} of {header.target_size} bytes, not the manifest's "
            f"{expect[0][:12]} of {expect[1]} bytes"
        )
    if hashlib.sha256(source).hexdigest() != header.source:
        raise PatchError(f"the local file is not the content this patch starts from ({header.source[:12]})")
    payload = obj[HEADER_SIZE:]
    if header.algorithm == HDIFF and hdiff_sizes(payload) != (header.target_size, len(source)):
        raise PatchError("the patch's own sizes disagree with its header or the local file")
    try:
        if header.algorithm == HDIFF:
            out = hdiffpatch.apply(source, payload)
        else:
            out = zstd_undelta(source, payload, header.target_size)
    except (hdiffpatch.HDiffPatchError, PatchError) as exc:
        raise PatchError(f"patch to {header.target[:12]} does not apply ({exc})") from exc
    if len(out) != header.target_size or hashlib.sha256(out).hexdigest() != header.target:
        raise PatchError(f"patch produced a file that is not {header.target[:12]}")
    return out
