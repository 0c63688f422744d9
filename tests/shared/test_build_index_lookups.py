"""What the planner asks of a build index for many files and chunks at once answers as the parsed manifest would:
the files at paths, which chunks a build has, and which files hold a chunk (chunks shared between files, repeated
within a file, and names that are not digests at all)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, strategies as st

from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, values out

POOL = [hashlib.sha256(b"%d" % n).hexdigest() for n in range(12)]  # few chunks: files share and repeat them


@st.composite
def builds(draw: st.DrawFn) -> Manifest:
    paths = draw(st.lists(st.sampled_from(["a", "b/c", "b/d", "é/x", "z", "日本/y", "b/c2", "q.pak"]), unique=True))
    files = []
    for path in sorted(paths):
        picked = draw(st.lists(st.sampled_from(POOL), max_size=6))
        chunks = tuple(ChunkRef(h, 100 + POOL.index(h)) for h in picked)
        content = hashlib.sha256(path.encode() + b"".join(bytes.fromhex(h) for h in picked)).hexdigest()
        files.append(FileEntry(path, sum(c.size for c in chunks), False, content, chunks))
    return Manifest("lookups", "1", DEFAULT_PARAMS, tuple(files))


ASKED = st.lists(st.sampled_from(POOL + ["", "zz" * 32, POOL[0].upper(), POOL[1][:62], "ab " * 21 + "a"]), max_size=10)


@given(builds(), st.lists(st.sampled_from(["a", "b/c", "é/x", "nope", "b", "q.pak", "日本/y"]), unique=True))
def test_files_at_paths_are_the_manifests_own_and_a_missing_path_is_left_out(manifest: Manifest, paths: list[str]) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    by_path = {f.path: f for f in manifest.files}
    assert index.files_at(paths) == {p: by_path[p] for p in paths if p in by_path}
    assert list(index.files_at(paths)) == [p for p in paths if p in by_path], "in the order asked"
    assert all(index.has_file(p) == (p in by_path) for p in paths)
    assert list(index.sizes()) == [(f.path, f.size) for f in manifest.files]


@given(builds(), ASKED)
def test_chunks_among_says_what_has_chunk_says_of_each(manifest: Manifest, asked: list[str]) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    assert index.chunks_among(asked) == {h for h in asked if index.has_chunk(h)}
    assert index.chunks_among([h for h in asked if len(h) == 64 and h == h.lower()]) == {
        h for h in asked if h in manifest.chunk_sizes()
    }


@given(builds(), st.lists(st.sampled_from(POOL + ["", "zz" * 32, POOL[1][:62], "ab " * 21 + "a"]), max_size=10))
def test_the_holders_of_a_chunk_are_every_file_with_it_each_once_by_path(manifest: Manifest, asked: list[str]) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    expected: dict[str, list[tuple[str, int]]] = {}
    for entry in manifest.files:
        for h in dict.fromkeys(ref.sha256 for ref in entry.chunks):
            if h in asked:
                expected.setdefault(h, []).append((entry.path, entry.size))
    assert index.holders(asked) == expected


@given(builds(), st.lists(st.sampled_from(POOL + ["", "zz" * 32, POOL[1][:62], "ab " * 21 + "a"]), max_size=10))
def test_the_places_of_chunks_are_every_offset_of_every_file_holding_one(manifest: Manifest, asked: list[str]) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    expected = []
    for entry in manifest.files:
        held = [(ref.sha256, offset) for offset, ref in entry.offsets() if ref.sha256 in asked]
        if held:
            expected.append((entry.path, held))
    assert [(path, list(held)) for path, held in index.places(asked)] == expected


@given(builds())
def test_file_infos_are_the_manifests_files_without_their_chunks(manifest: Manifest) -> None:
    index = BuildIndex.scan(manifest.canonical_bytes())
    assert [tuple(i) for i in index.infos()] == [(f.path, f.size, f.executable, f.sha256) for f in manifest.files]
    assert all(type(i).__name__ == "FileInfo" and index.info(i.path) == i for i in index.infos())


@given(builds(), st.lists(st.sampled_from(POOL), max_size=10), st.lists(st.sampled_from(["a", "b/c", "é/x", "q.pak", "nope"])))
def test_likely_holders_of_chunks_change_nothing_but_the_work(manifest: Manifest, asked: list[str], likely: list[str]) -> None:
    """Files at likely paths are looked at alone only when they hold every use of the chunks asked for (the build's
    use counts say): chunks here are shared and repeated across files, so most draws need the pass over all."""
    index = BuildIndex.scan(manifest.canonical_bytes())
    everywhere = [(path, list(held)) for path, held in index.places(asked)]
    index.use_counts()  # kept with an index the client keeps; a scanned one counts them when first asked
    assert [(path, list(held)) for path, held in index.places(asked, likely)] == everywhere


def test_files_at_likely_paths_are_enough_only_when_they_hold_every_use() -> None:
    x, y, z = (ChunkRef(h, 100 + n) for n, h in enumerate(POOL[:3]))
    files = [("a", (x, y, x)), ("b", (z,)), ("c", (y,))]
    manifest = Manifest("lookups", "1", DEFAULT_PARAMS, tuple(
        FileEntry(p, sum(c.size for c in chunks), False, hashlib.sha256(p.encode()).hexdigest(), chunks) for p, chunks in files
    ))
    index = BuildIndex.scan(manifest.canonical_bytes())
    index.use_counts()
    wanted_x = {index.chunks.position(bytes.fromhex(x.sha256)): x.sha256}
    wanted_y = {index.chunks.position(bytes.fromhex(y.sha256)): y.sha256}
    assert index._only_holders(wanted_x, ["a", "nope"]) == [0]  # both uses of x are in a: c and b are not looked at
    assert index._only_holders(wanted_y, ["a"]) is None  # c holds y too: every file is looked at
    assert [(p, list(h)) for p, h in index.places_at(wanted_x, ["a"])] == [("a", [(x.sha256, 0), (x.sha256, 201)])]
    assert [(p, list(h)) for p, h in index.places_at(wanted_y, ["a"])] == [("a", [(y.sha256, 100)]), ("c", [(y.sha256, 0)])]
