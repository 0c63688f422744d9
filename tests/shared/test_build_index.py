"""The compact build index answers exactly what the parsed manifest would: every file, chunk and content,
read straight off the canonical bytes (the scanner, not the parse it falls back to)."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random

import pytest
from hypothesis import given, settings, strategies as st

from shared import build_index
from shared.build_index import BuildIndex, DigestSet, _scan
from shared.chunking import ChunkingParams, ChunkRef
from shared.errors import ManifestError
from shared.manifest import FileEntry, Manifest
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


@st.composite
def next_builds(draw: st.DrawFn) -> tuple[Manifest, Manifest]:
    """A build and a next one: files kept, dropped, rewritten with chunks old and new (shared across files too)."""
    old = draw(manifests())
    pool = [ref for entry in old.files for ref in entry.chunks] + [
        ChunkRef(h, draw(st.integers(1, old.chunking.max_size))) for h in draw(st.lists(sha256_hex, max_size=3))
    ]
    files = []
    for entry in old.files:
        fate = draw(st.sampled_from(["keep", "keep", "drop", "rewrite"]))
        if fate == "keep":
            files.append(entry)
        elif fate == "rewrite" and pool:
            chunks = tuple(draw(st.lists(st.sampled_from(pool), max_size=5)))
            files.append(FileEntry(entry.path, sum(c.size for c in chunks), entry.executable, draw(sha256_hex), chunks))
    extra = draw(manifests())
    taken = {e.path for e in files}
    files += [e for e in extra.files if e.path not in taken]
    links = draw(st.sampled_from([old.links, extra.links, ()]))
    files.sort(key=lambda e: e.path)
    return old, Manifest(old.game, "2", draw(st.sampled_from([old.chunking, extra.chunking])), tuple(files), links)


def _same_index(made: BuildIndex, scanned: BuildIndex) -> None:
    """`made` answers every question as `scanned` (made whole) does, whatever positions its chunks have."""
    assert made.chunks._blob == scanned.chunks._blob, "the same chunks"
    made_uses, scanned_uses = made.use_counts(), scanned.use_counts()
    for digest in scanned.chunks:
        at = made.chunks.position(digest)
        assert made.chunks.digest(at) == digest and made_uses[at] == scanned_uses[scanned.chunks.position(digest)]
    assert sum(made_uses) == sum(scanned_uses), "no use counted at a hole"
    assert list(made.files()) == list(scanned.files()) and list(made.infos()) == list(scanned.infos())
    assert all(made.locate(h) == scanned.locate(h) for h in scanned.chunk_names)
    assert made._spans == scanned._spans  # where the entries lie, for the next update
    if made.chunks.moved == 0 and made.chunks.span == len(made.chunks):  # numbered in sorted order: a scan's columns
        assert made._chunk_at == scanned._chunk_at and made_uses == scanned_uses


COMPACTING = {"never": math.inf, "as shipped": build_index._COMPACT_ABOVE, "always": 0.0}


@settings(max_examples=40, deadline=None)
@given(next_builds(), st.sampled_from(sorted(COMPACTING)))
def test_the_next_builds_index_made_from_the_held_ones_is_the_one_a_scan_makes(
    pair: tuple[Manifest, Manifest], compacting: str
) -> None:
    old, new = pair
    old_bytes, new_bytes = old.canonical_bytes(), new.canonical_bytes()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_index, "_COMPACT_ABOVE", COMPACTING[compacting])
        made = BuildIndex.following(BuildIndex.scan(old_bytes), old_bytes, new_bytes)
        if not old.files or not new.files:
            assert made is None  # nothing to copy: the caller scans
            return
        assert made is not None, "the held build's index was not used"
        _same_as_manifest(made, new)
        assert made.links == tuple(sorted(new.links, key=lambda e: e.path))
        _same_index(made, BuildIndex.scan(new_bytes))
        if compacting == "always":
            assert made.chunks.moved == 0, "numbered in sorted order again"
        # and the index made this way, kept and read back, is what the next update starts from
        kept = BuildIndex.from_bytes(made.to_bytes())
        _same_index(kept, made)
        again = BuildIndex.following(kept, new_bytes, old_bytes)
        assert again is not None
        _same_as_manifest(again, old)
        _same_index(again, BuildIndex.scan(old_bytes))


def _pack(name: str, chunks: list[ChunkRef]) -> FileEntry:
    return FileEntry(name, sum(c.size for c in chunks), False, hashlib.sha256(name.encode() + repr(chunks).encode()).hexdigest(), tuple(chunks))


def _build(version: str, files: dict[str, list[ChunkRef]]) -> bytes:
    return Manifest("game", version, ChunkingParams(), tuple(_pack(p, c) for p, c in sorted(files.items()))).canonical_bytes()


@pytest.mark.parametrize("change", ["chunks gone", "chunks new", "both", "a compaction", "the same place again"])
def test_chunk_positions_stay_put_across_updates_until_enough_moved_to_number_them_again(
    change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten updates of a 2,000-chunk build, each changing 1% of it: positions of chunks that stay never move and
    the copied columns are the held index's own, until more than the share moved (then: exactly a scan's index)."""
    if change not in ("a compaction", "the same place again"):
        monkeypatch.setattr(build_index, "_COMPACT_ABOVE", math.inf)
    rng = random.Random(change)
    fresh = (ChunkRef(hashlib.sha256(b"%d" % n).hexdigest(), 100 + n % 7) for n in itertools.count())
    files = {f"pack{i}.bin": [next(fresh) for _ in range(200)] for i in range(10)}
    data = _build("0", files)
    index = BuildIndex.scan(data)
    for version in range(1, 11):
        before = {h: index.chunks.position(bytes.fromhex(h)) for h in index.chunk_names}
        pack = files[f"pack{version % 10}.bin"]
        at = rng.randrange(len(pack) - 20)
        if change == "the same place again":  # new chunks that the next update replaces: few moved, many holes
            pack, at = files["pack0.bin"], 50
            pack[at : at + 10] = [next(fresh) for _ in range(10)]
        if change in ("chunks gone", "both", "a compaction"):
            del pack[at : at + 10]
        if change in ("chunks new", "both", "a compaction"):
            pack[at:at] = [next(fresh) for _ in range(10)]
        previous, data = data, _build(str(version), files)
        made = BuildIndex.following(BuildIndex.from_bytes(index.to_bytes()), previous, data)
        assert made is not None
        scanned = BuildIndex.scan(data)
        _same_index(made, scanned)
        if made.chunks.moved:
            assert all(made.chunks.position(bytes.fromhex(h)) == p for h, p in before.items() if made.has_chunk(h))
            assert made.to_bytes().startswith(b"mist-build-index-2\n"), "an older Mist must not misread the positions"
        index = made
    moved = index.chunks.moved
    if change in ("a compaction", "the same place again"):
        assert moved <= len(index.chunks) * build_index._COMPACT_ABOVE < 10 * 20, "compacted on the way"
        assert index.chunks.span - len(index.chunks) <= len(index.chunks) * build_index._COMPACT_ABOVE
    else:
        assert moved == 10 * (10 if change != "both" else 20), "each update's chunks moved, none renumbered"


def test_a_kept_index_with_moved_positions_is_refused_by_the_first_versions_reader() -> None:
    files = {"a.bin": [ChunkRef("a" * 64, 5), ChunkRef("b" * 64, 6)], "b.bin": [ChunkRef("c" * 64, 7)]}
    first, second = _build("1", files), _build("2", {**files, "a.bin": [ChunkRef("d" * 64, 5), ChunkRef("b" * 64, 6)]})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(build_index, "_COMPACT_ABOVE", math.inf)
        made = BuildIndex.following(BuildIndex.scan(first), first, second)
    assert made is not None and made.chunks.moved == 2
    kept = made.to_bytes()
    assert kept.startswith(b"mist-build-index-2\n") and BuildIndex.scan(first).to_bytes().startswith(b"mist-build-index-1\n")
    _same_index(BuildIndex.from_bytes(kept), made)
    relabelled = b"mist-build-index-1\n" + kept[len(b"mist-build-index-2\n") :]
    with pytest.raises(ValueError):
        BuildIndex.from_bytes(relabelled)  # version 1 with the moves' columns: damaged, made again from the manifest


def test_a_chunk_another_file_still_holds_stays_in_the_set_and_one_none_holds_leaves_it() -> None:
    shared_chunk, own = ChunkRef("a" * 64, 10), ChunkRef("b" * 64, 5)
    one = FileEntry("one.bin", 15, False, "1" * 64, (shared_chunk, own))
    two = FileEntry("two.bin", 10, False, "2" * 64, (shared_chunk,))
    old = Manifest("game", "1", ChunkingParams(), (one, two))
    for kept, gone in ((two, own), (one, None)):
        three = FileEntry("three.bin", 3, True, "3" * 64, (ChunkRef("c" * 64, 3),))
        new = Manifest("game", "2", ChunkingParams(), tuple(sorted((kept, three), key=lambda e: e.path)))
        made = BuildIndex.following(BuildIndex.scan(old.canonical_bytes()), old.canonical_bytes(), new.canonical_bytes())
        assert made is not None and made.has_chunk(shared_chunk.sha256) and made.has_chunk("c" * 64)
        assert (gone is None) or not made.has_chunk(gone.sha256)
        _same_as_manifest(made, new)


def test_bytes_the_scanner_does_not_know_are_left_to_a_scan() -> None:
    old = Manifest("game", "1", ChunkingParams(), (FileEntry("a", 3, False, "1" * 64, (ChunkRef("c" * 64, 3),)),))
    data = old.canonical_bytes()
    index = BuildIndex.scan(data)
    for odd in (data.replace(b'"size":3}', b'"size": 3}'), data[:-1], b"{}"):
        assert BuildIndex.following(index, data, odd) is None
