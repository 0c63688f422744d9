"""The compact build index answers exactly what the parsed manifest would: every file, chunk and content,
read straight off the canonical bytes (the scanner, not the parse it falls back to)."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import given, strategies as st

from shared.build_index import BuildIndex, DigestSet, _scan
from shared.errors import ManifestError
from shared.manifest import Manifest
from tests.shared.strategies import manifests, sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, values out


def _same_as_manifest(index: BuildIndex, manifest: Manifest) -> None:
    assert (index.game, index.version, index.chunking) == (manifest.game, manifest.version, manifest.chunking)
    assert list(index.files()) == list(manifest.files)
    for entry in manifest.files:
        assert index.file(entry.path) == entry
        found = index.file_with_content(entry.sha256)
        assert found is not None and found.sha256 == entry.sha256
        assert index.has_content(entry.sha256)
        assert all(index.has_chunk(ref.sha256) for ref in entry.chunks)
    assert len(index.chunks) == len(manifest.chunk_sizes())


@given(manifests())
def test_the_scanner_reads_every_canonical_manifest_as_the_parser_does(manifest: Manifest) -> None:
    scanned = _scan(manifest.canonical_bytes())
    assert scanned is not None, "the scanner gave up on canonical bytes (the slow parse would have run)"
    _same_as_manifest(scanned, manifest)
    _same_as_manifest(BuildIndex.of(manifest), manifest)


@given(manifests(), sha256_hex, st.text(min_size=1, max_size=20))
def test_what_the_build_lacks_is_not_found(manifest: Manifest, digest: str, path: str) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    assert index.has_chunk(digest) == (digest in manifest.chunk_sizes())
    assert index.has_content(digest) == any(f.sha256 == digest for f in manifest.files)
    assert (index.file(path) is not None) == any(f.path == path for f in manifest.files)
    for odd in ("", "zz" * 32, digest[:62], digest.upper() + "00", "0" * 66):
        assert not index.has_chunk(odd) or odd in manifest.chunk_sizes()


def test_bytes_that_are_not_canonical_go_to_the_strict_parse_which_refuses_them() -> None:
    manifest = json.loads((pytest.importorskip("pathlib").Path(__file__).parent / "fixtures" / "manifest-v1.json").read_text())
    spaced = json.dumps(manifest, sort_keys=True, ensure_ascii=False).encode()
    assert _scan(spaced) is None
    with pytest.raises(ManifestError, match="canonical"):
        BuildIndex.scan(spaced)


def test_a_digest_spanning_two_stored_ones_is_not_taken_for_a_member() -> None:
    first, second = b"\x00" * 16 + b"\x01" * 16, b"\x01" * 16 + b"\x02" * 16
    spanning = b"\x01" * 32  # the second half of one and the first half of the next
    digests = DigestSet.of([second, first])
    assert spanning not in digests and first in digests and second in digests
    assert (digests.position(first), digests.position(second), digests.position(spanning)) == (0, 1, -1)
    assert DigestSet.of([first, second, spanning]).position(spanning) == 1


@pytest.mark.parametrize("count", [0, 1, 7, 5000])
def test_membership_and_order_match_a_sorted_set(count: int) -> None:
    rng = random.Random(count)
    members = [rng.randbytes(32) for _ in range(count)]
    members += [hashlib.sha256(bytes([i % 3])).digest()[:4] + rng.randbytes(28) for i in range(count // 10)]  # crowded buckets
    digests = DigestSet.of(members + members[: count // 2])  # repeats are kept once
    ordered = sorted(set(members))
    assert len(digests) == len(ordered)
    assert [digests.position(d) for d in ordered] == list(range(len(ordered)))
    assert [digests.digest(i) for i in range(len(ordered))] == ordered
    assert not any(rng.randbytes(32) in digests for _ in range(1000))
    assert "0" * 64 not in digests and b"short" not in digests


@given(manifests())
def test_a_chunk_is_located_where_the_build_first_holds_it(manifest: Manifest) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    first: dict[str, tuple[str, int, int]] = {}
    for entry in manifest.files:
        for offset, ref in entry.offsets():
            first.setdefault(ref.sha256, (entry.path, offset, ref.size))
    assert {h: index.locate(h) for h in first} == first
    assert set(index.chunk_names) == set(first) and len(index.chunk_names) == len(first)
    assert all(h in index.chunk_names for h in first) and (("0" * 64 in index.chunk_names) == ("0" * 64 in first))
    assert index.locate("0" * 64) == first.get("0" * 64) and 42 not in index.chunk_names


@given(manifests())
def test_an_index_kept_as_bytes_reads_back_as_itself(manifest: Manifest) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    again = BuildIndex.from_bytes(index.to_bytes())
    _same_as_manifest(again, manifest)
    assert again.to_bytes() == index.to_bytes() and again.nbytes == index.nbytes


def test_a_damaged_kept_index_is_refused_so_it_is_made_again() -> None:
    manifest = json.loads((pytest.importorskip("pathlib").Path(__file__).parent / "fixtures" / "manifest-v1.json").read_text())
    kept = bytearray(BuildIndex.scan(json.dumps(manifest, sort_keys=True, separators=(",", ":"),
                                                ensure_ascii=False).encode()).to_bytes())
    for damaged in (bytes(kept[:-1]), bytes(kept[:60]) + bytes([kept[60] ^ 1]) + bytes(kept[61:]), b"", b"other"):
        with pytest.raises(ValueError):
            BuildIndex.from_bytes(damaged)
