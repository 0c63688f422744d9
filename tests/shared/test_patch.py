"""Patch objects: both kinds round-trip, and every way one can be wrong is refused, never written."""

from __future__ import annotations

import hashlib
import random

import pytest

from shared import patch
from shared.errors import PatchError


def versions(size: int = 300_000, seed: int = 7) -> tuple[bytes, bytes]:
    """An old file and a new one changed throughout, the way a recompiled binary changes."""
    rng = random.Random(seed)
    old = bytearray(rng.randbytes(size))
    new = bytearray(old)
    for offset in range(0, size, 4096):
        new[offset] ^= 0xFF
    new[size // 2 : size // 2] = rng.randbytes(1000)
    return bytes(old), bytes(new)


@pytest.mark.parametrize("algorithm", [patch.HDIFF, patch.ZSTD_DICT])
def test_a_patch_turns_its_source_into_its_target(algorithm: str) -> None:
    old, new = versions()
    obj = patch.make(old, new, algorithm)
    assert patch.apply(obj, old) == new
    header = patch.read_header(obj)
    assert (header.algorithm, header.source, header.target, header.target_size) == (
        algorithm, hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest(), len(new))
    assert len(obj) < len(new) // 10, "a file changed in scattered bytes should patch to a small fraction of it"


@pytest.mark.parametrize("algorithm", [patch.HDIFF, patch.ZSTD_DICT])
def test_a_patch_applied_to_another_file_is_refused(algorithm: str) -> None:
    old, new = versions()
    obj = patch.make(old, new, algorithm)
    damaged = bytearray(old)
    damaged[100] ^= 1
    with pytest.raises(PatchError, match="not the content this patch starts from"):
        patch.apply(obj, bytes(damaged))


@pytest.mark.parametrize("algorithm", [patch.HDIFF, patch.ZSTD_DICT])
def test_a_damaged_payload_never_yields_a_file(algorithm: str) -> None:
    old, new = versions()
    obj = bytearray(patch.make(old, new, algorithm))
    for offset in (patch.HEADER_SIZE + 10, len(obj) // 2, len(obj) - 3):
        bad = bytearray(obj)
        bad[offset] ^= 0x55
        with pytest.raises(PatchError):
            patch.apply(bytes(bad), old)
    with pytest.raises(PatchError):
        patch.apply(bytes(obj[: len(obj) // 2]), old)


def test_a_header_that_lies_about_the_target_is_caught() -> None:
    old, new = versions()
    obj = bytearray(patch.make(old, new, patch.HDIFF))
    obj[8 + 1 + 32] ^= 1  # first byte of the target hash
    with pytest.raises(PatchError, match="not"):
        patch.apply(bytes(obj), old)


def test_objects_that_are_not_patches_are_refused() -> None:
    with pytest.raises(PatchError, match="shorter"):
        patch.read_header(b"MISTPTCH")
    with pytest.raises(PatchError, match="not a Mist patch"):
        patch.read_header(b"X" * patch.HEADER_SIZE)


def test_the_quick_delta_handles_files_larger_than_zstds_default_window() -> None:
    rng = random.Random(3)
    old = rng.randbytes(9 * 1024 * 1024)
    new = old[:5_000_000] + b"inserted" + old[5_000_000:]
    obj = patch.make(old, new, patch.ZSTD_DICT)
    assert len(obj) < 50_000
    assert patch.apply(obj, old) == new


def test_empty_files_patch_both_ways() -> None:
    for old, new in ((b"", b"content" * 100), (b"content" * 100, b"")):
        for algorithm in (patch.HDIFF, patch.ZSTD_DICT):
            assert patch.apply(patch.make(old, new, algorithm), old) == new


@pytest.mark.parametrize("algorithm", [patch.HDIFF, patch.ZSTD_DICT])
def test_a_header_declaring_a_huge_target_is_refused_before_anything_is_allocated(algorithm: str) -> None:
    old, new = versions()
    obj = patch.make(old, new, algorithm)
    header = patch.read_header(obj)
    for size in (2**50, 2**30):  # beyond any patchable file, and a size the manifest does not say
        lying = patch._HEADER.pack(*patch._HEADER.unpack_from(obj)[:4], size) + obj[patch.HEADER_SIZE:]
        with pytest.raises(PatchError, match="patch"):
            patch.apply(lying, old, (header.target, len(new)))


def test_hdiffpatch_sizes_are_read_and_must_agree_with_the_header_and_the_source() -> None:
    old, new = versions()
    obj = patch.make(old, new, patch.HDIFF)
    assert patch.hdiff_sizes(obj[patch.HEADER_SIZE:]) == (len(new), len(old))
    assert patch.apply(obj, old, (hashlib.sha256(new).hexdigest(), len(new))) == new
    with pytest.raises(PatchError, match="not an HDiffPatch"):
        patch.hdiff_sizes(b"garbage" * 10)
    with pytest.raises(PatchError, match="truncated"):
        patch.hdiff_sizes(b"HDIFF13&lzma\0\x86")
