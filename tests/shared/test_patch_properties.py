"""Properties of patch objects, which arrive unsigned from the seeder: any pair of contents patches both ways
and back, and whatever an object's header or payload says, `apply` returns the manifest's content or raises
a PatchError, refusing a size the signed manifest does not give before anything is made for it."""

from __future__ import annotations

import hashlib
import random
from contextlib import suppress

import pytest
from hypothesis import event as tally, given, strategies as st

from shared import patch
from shared.errors import PatchError
from tests.hostile import allocation_peak
from tests.shared.strategies import sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, bytes out

algorithms = st.sampled_from([patch.HDIFF, patch.ZSTD_DICT])
sizes = st.sampled_from([0, 1, patch.MAX_TARGET, patch.MAX_TARGET + 1, 2**50, 2**64 - 1]) | st.integers(0, 2**64 - 1)
OLD = random.Random(5).randbytes(3000)
NEW = OLD[:1000] + b"inserted" + OLD[1200:]
EXPECT = (hashlib.sha256(NEW).hexdigest(), len(NEW))
REAL = {algorithm: patch.make(OLD, NEW, algorithm) for algorithm in (patch.HDIFF, patch.ZSTD_DICT)}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _varint(n: int) -> bytes:
    """A number as HDiffPatch writes sizes: 7-bit groups, most significant first, high bit set on all but the last."""
    groups = [n & 0x7F]
    while n := n >> 7:
        groups.append(0x80 | (n & 0x7F))
    return bytes(reversed(groups))


@given(st.binary(max_size=400), st.binary(max_size=400), algorithms, st.data())
def test_a_patch_turns_its_source_into_its_target_and_its_header_says_so(old, new, algorithm, data) -> None:
    if data.draw(st.booleans()) and old:  # an edit of the old content, the usual update, as well as unrelated ones
        at = data.draw(st.integers(0, len(old)))
        new = old[:at] + new + old[at + data.draw(st.integers(0, 50)):]
    obj = patch.make(old, new, algorithm)
    assert patch.read_header(obj) == patch.Header(algorithm, _sha(old), _sha(new), len(new))
    assert patch.apply(obj, old, (_sha(new), len(new))) == new
    if algorithm == patch.HDIFF:
        assert patch.hdiff_sizes(obj[patch.HEADER_SIZE:]) == (len(new), len(old))


@given(st.integers(0, 2**70 - 1), st.integers(0, 2**70 - 1), st.binary(max_size=8).filter(lambda b: b"\0" not in b),
       st.binary(max_size=16))
def test_hdiffpatch_sizes_read_back_as_written(new_size: int, old_size: int, name: bytes, rest: bytes) -> None:
    payload = b"HDIFF13&" + name + b"\0" + _varint(new_size) + _varint(old_size) + rest
    assert patch.hdiff_sizes(payload) == (new_size, old_size)


@given(st.binary(max_size=120) | st.binary(max_size=60).map(lambda b: b"HDIFF13&" + b))
def test_any_payload_s_sizes_are_read_or_refused_with_a_patch_error(payload: bytes) -> None:
    with suppress(PatchError):
        new_size, old_size = patch.hdiff_sizes(payload)
        assert new_size < 2**70 and old_size < 2**70
    assert allocation_peak(lambda: patch.hdiff_sizes(payload), (PatchError,)) < 4 * len(payload) + 64 * 1024


@given(st.binary(max_size=200), st.binary(max_size=100))
def test_any_bytes_as_a_patch_object_get_only_a_patch_error(obj: bytes, source: bytes) -> None:
    with suppress(PatchError):
        patch.read_header(obj)
    with suppress(PatchError):
        out = patch.apply(obj, source)
        assert _sha(out) == patch.read_header(obj).target


@given(algorithms, st.sets(st.sampled_from(["code", "source", "target", "size", "payload", "payload sizes"]),
                          max_size=2), st.data())
def test_a_hostile_header_or_payload_gets_a_patch_error_or_the_manifest_s_content(
    algorithm: str, changed: set[str], data: st.DataObject
) -> None:
    """A real patch with one or two of its parts changed: the kind, either hash, the size (up to 2^64-1), a
    byte of the payload, or the sizes HDiffPatch's own header declares."""
    _, code, source, target, size = patch._HEADER.unpack_from(REAL[algorithm])
    payload = bytearray(REAL[algorithm][patch.HEADER_SIZE:])
    code = data.draw(st.integers(0, 255)) if "code" in changed else code
    source = bytes.fromhex(data.draw(sha256_hex)) if "source" in changed else source
    target = bytes.fromhex(data.draw(sha256_hex)) if "target" in changed else target
    size = data.draw(sizes) if "size" in changed else size
    if "payload" in changed:
        payload[data.draw(st.integers(0, len(payload) - 1))] ^= data.draw(st.integers(1, 255))
    if "payload sizes" in changed and algorithm == patch.HDIFF:
        payload = bytearray(b"HDIFF13&lzma\0" + _varint(data.draw(sizes)) + _varint(data.draw(sizes)) + payload[17:])
    obj = patch._HEADER.pack(patch.MAGIC, code, source, target, size) + payload
    try:
        out = patch.apply(obj, OLD, EXPECT)
    except PatchError as exc:
        tally(f"refused: {str(exc)[:28]}")
        if changed & {"target", "size"} and not changed & {"code", "source"} and (target.hex(), size) != EXPECT:
            assert "not the manifest's" in str(exc) or "up to" in str(exc)  # refused on the header, before any work
        return
    tally("applied")
    assert out == NEW


@given(sizes.filter(lambda n: n > patch.MAX_TARGET), algorithms)
def test_a_header_declaring_more_than_any_patched_file_is_refused_even_without_a_manifest(size, algorithm) -> None:
    obj = REAL[algorithm]
    lying = patch._HEADER.pack(*patch._HEADER.unpack_from(obj)[:4], size) + obj[patch.HEADER_SIZE:]
    with pytest.raises(PatchError, match="up to"):
        patch.apply(lying, OLD)
