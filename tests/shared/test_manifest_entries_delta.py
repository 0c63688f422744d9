"""The entries form of a manifest delta: applied from the held manifest's file to the new one's, byte for byte,
and the new build's index made from where the bytes came is the one a scan of them makes. Anything that does not
fit is refused (the delta) or left to a scan (the index), never guessed."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings

from shared import manifest_delta
from shared.build_index import BuildIndex
from shared.errors import ManifestError
from shared.manifest import Manifest
from tests.shared.test_build_index import _same_as_manifest, next_builds
from tests.shared.test_manifest_delta import big_manifest, canonical, next_version, sha


def rebuilt(old: bytes, delta: bytes, expect: str) -> tuple[bytes, manifest_delta.Rebuilt]:
    out = io.BytesIO()
    made = manifest_delta.apply_to_file(io.BytesIO(old), delta, expect, out)
    return out.getvalue(), made


@pytest.mark.parametrize("links", [False, True], ids=["format-1", "format-2-links"])
def test_the_entries_form_rebuilds_the_new_manifest_and_its_index_from_the_held_ones(links: bool) -> None:
    old = canonical(big_manifest(1))
    new = canonical(next_version(big_manifest(1), links))
    delta = manifest_delta.make_entries(old, new)
    assert manifest_delta.read_header(delta).entries
    data, made = rebuilt(old, delta, sha(new))
    assert data == new and made.size == len(new)
    assert len(delta) < len(new) / 20  # one entry changed (patched), one gone, the head and tail: the rest copied
    assert sum(length for _, _, length in made.copies) > len(new) * 0.9
    index = BuildIndex.from_rebuilt(BuildIndex.scan(old), made)
    assert index is not None, "the held build's index was not used"
    scanned = BuildIndex.scan(new)
    assert list(index.files()) == list(scanned.files()) and index.links == scanned.links
    assert index.chunks._blob == scanned.chunks._blob and index._spans == scanned._spans


def test_a_changed_entry_travels_as_a_patch_of_the_held_one() -> None:
    obj = big_manifest(1, files=3, chunks=400)
    old = canonical(obj)
    obj["files"][1]["chunks"][200][0] = "ab" * 32  # one chunk of 400 in one file
    new = canonical(obj)
    delta = manifest_delta.make_entries(old, new)
    assert len(delta) < 2000  # the entry is ~40 KB
    assert rebuilt(old, delta, sha(new))[0] == new


@settings(max_examples=60)
@given(next_builds())
def test_every_next_build_is_rebuilt_exactly_and_indexed_as_a_scan_indexes_it(pair: tuple[Manifest, Manifest]) -> None:
    old, new = pair
    old_bytes, new_bytes = old.canonical_bytes(), new.canonical_bytes()
    delta = manifest_delta.make_entries(old_bytes, new_bytes)
    if not manifest_delta.read_header(delta).entries:  # a build of no files is not cut into entries
        assert not old.files or not new.files
        return
    data, made = rebuilt(old_bytes, delta, hashlib.sha256(new_bytes).hexdigest())
    assert data == new_bytes
    index = BuildIndex.from_rebuilt(BuildIndex.scan(old_bytes), made)
    assert index is not None
    _same_as_manifest(index, new)
    scanned = BuildIndex.scan(new_bytes)
    assert index.chunks._blob == scanned.chunks._blob and list(index.use_counts()) == list(scanned.use_counts())
    assert index._spans == scanned._spans and index.links == scanned.links


def test_a_held_file_damaged_on_disk_rebuilds_nothing() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    delta = manifest_delta.make_entries(old, new)
    damaged = bytearray(old)
    damaged[len(old) // 2] ^= 1
    with pytest.raises(ManifestError, match="did not rebuild .*fetch the whole manifest"):
        rebuilt(bytes(damaged), delta, sha(new))
    with pytest.raises(ManifestError, match="past the end of the held manifest"):
        rebuilt(old[: len(old) // 2], delta, sha(new))


@pytest.mark.parametrize("damage", ["operation", "length", "declared size", "payload"])
def test_a_damaged_entries_delta_is_refused_with_what_to_do(damage: str) -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    delta = bytearray(manifest_delta.make_entries(old, new))
    at = manifest_delta.HEADER_SIZE
    if damage == "operation":
        delta[at] = ord("X")
    elif damage == "length":  # the first operation is the head's literal: its length
        delta[at + 1 : at + 5] = (len(new) + 1).to_bytes(4, "big")
    elif damage == "declared size":
        delta[72:80] = (len(new) - 1).to_bytes(8, "big")
    else:
        delta[-3] ^= 0x55
    with pytest.raises(ManifestError, match="fetch the whole manifest|not the size it declares"):
        rebuilt(old, bytes(delta), sha(new))


def test_the_entries_form_is_only_applied_to_files_and_the_whole_form_is_not() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    with pytest.raises(ManifestError, match="applied to files"):
        manifest_delta.apply(old, manifest_delta.make_entries(old, new), sha(new))
    with pytest.raises(ManifestError, match="not a manifest delta of entries"):
        rebuilt(old, manifest_delta.make(old, new), sha(new))


def test_copies_that_do_not_fall_on_whole_held_entries_are_left_to_a_scan() -> None:
    old, new = canonical(big_manifest(1)), canonical(next_version(big_manifest(1)))
    data, made = rebuilt(old, manifest_delta.make_entries(old, new), sha(new))
    held = BuildIndex.scan(old)
    at, offset, length = made.copies[0]
    for shifted in ((at, offset + 1, length - 1), (at, offset, length - 1)):
        odd = manifest_delta.Rebuilt(made.size, [shifted, *made.copies[1:]], made.literals)
        assert BuildIndex.from_rebuilt(held, odd) is None
    no_tail = manifest_delta.Rebuilt(made.size, made.copies, made.literals[:-1])
    assert BuildIndex.from_rebuilt(held, no_tail) is None
