"""The update planner (pure): per file, the cheapest of chunks the client lacks and patches from what it holds."""

from __future__ import annotations

import pytest

import hashlib

from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from tracker.planner import (BUNDLE, CHUNKS, MAX_PATCH_FILE, MIN_PATCH_FILE, PATCH, BundleOption, PatchOption,
                             cheapest_routes, patch_pairs, path_shape, plan_update, write_chunks)

pytestmark = pytest.mark.same_on_every_backend  # pure: the update planner


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str, *pieces: bytes, size: int | None = None) -> FileEntry:
    whole = b"".join(pieces)
    return FileEntry(path, size if size is not None else len(whole), False, sha(whole),
                     tuple(ChunkRef(sha(p), len(p)) for p in pieces))


def build(version: str, *files: FileEntry) -> Manifest:
    return Manifest("hollow", version, DEFAULT_PARAMS, files)


A, B, C, D, E = (bytes([n]) * 5000 for n in range(5))
V1 = build("1", entry("game.exe", A, B), entry("data.pak", C), entry("readme", D))
V2 = build("2", entry("game.exe", A, E), entry("data.pak", C, E), entry("readme", D + b"!"))
EXE_V2 = V2.files[0]


def stored(manifest: Manifest, size: int = 1000) -> dict[str, int]:
    return {h: size for h in write_chunks(manifest, [f.path for f in manifest.files])}


def option(source: FileEntry, target: FileEntry, size: int, algorithm: str = "hdiff") -> PatchOption:
    return PatchOption(source.sha256, target.sha256, sha(b"%d" % size + target.sha256.encode()), size * 3, size, algorithm)


def test_without_patches_every_file_comes_by_the_chunks_it_lacks_and_shared_chunks_count_once() -> None:
    decided = plan_update(V2, ["game.exe", "data.pak"], [V1], stored(V2), [])
    assert [(c.path, c.source, c.chunk_bytes) for c in decided.choices] == [
        ("game.exe", CHUNKS, 1000),  # chunk E: A is held
        ("data.pak", CHUNKS, 0),  # C is held, E is already on its way for game.exe
    ]
    assert decided.bytes_by_source() == {CHUNKS: 1000, PATCH: 0}


def test_a_patch_smaller_than_the_lacking_chunks_wins_and_a_larger_one_loses() -> None:
    small = plan_update(V2, ["game.exe"], [V1], stored(V2), [option(V1.files[0], EXE_V2, 10)])
    assert small.choices[0].source == PATCH and small.choices[0].bytes == 10
    large = plan_update(V2, ["game.exe"], [V1], stored(V2), [option(V1.files[0], EXE_V2, 5000)])
    assert large.choices[0].source == CHUNKS and large.choices[0].bytes == 1000


def test_the_smallest_patch_from_any_held_content_is_chosen() -> None:
    other = build("0", entry("old/game.exe", B, B))
    offers = [option(V1.files[0], EXE_V2, 300, "zstd"), option(V1.files[0], EXE_V2, 200), option(other.files[0], EXE_V2, 100)]
    decided = plan_update(V2, ["game.exe"], [V1, other], stored(V2), offers)
    assert decided.choices[0].patch == offers[2]


def test_a_patch_from_content_the_client_does_not_hold_is_never_offered() -> None:
    stranger = entry("game.exe", E, E)
    decided = plan_update(V2, ["game.exe"], [V1], stored(V2), [option(stranger, EXE_V2, 1)])
    assert decided.choices[0].source == CHUNKS


def test_a_file_wholly_on_disk_costs_nothing_and_needs_no_patch() -> None:
    moved = build("3", entry("renamed.pak", C))
    decided = plan_update(moved, ["renamed.pak"], [V1], stored(moved), [option(V1.files[1], moved.files[0], 1)])
    assert (decided.choices[0].source, decided.choices[0].bytes) == (CHUNKS, 0)


def test_a_chunk_left_unfetched_because_of_a_patch_is_still_paid_by_the_next_file() -> None:
    decided = plan_update(V2, ["game.exe", "data.pak"], [V1], stored(V2), [option(V1.files[0], EXE_V2, 10)])
    assert [(c.source, c.bytes) for c in decided.choices] == [(PATCH, 10), (CHUNKS, 1000)]


def test_patch_pairs_are_same_path_changes_within_patchable_sizes() -> None:
    big = build("4", entry("game.exe", A, E), entry("huge.bin", A, size=MAX_PATCH_FILE + 1), entry("readme", b"tiny"))
    old = build("3", entry("game.exe", A, B), entry("huge.bin", B, size=MAX_PATCH_FILE + 1), entry("readme", b"old"))
    pairs = patch_pairs(big, [old])
    assert [(s.path, t.path) for s, t in pairs] == [("game.exe", "game.exe")]
    assert patch_pairs(big, [old], write=["readme"]) == []
    assert MIN_PATCH_FILE > len(b"tiny")


def test_the_plan_json_names_the_patch_and_both_costs() -> None:
    offer = option(V1.files[0], EXE_V2, 10)
    out = plan_update(V2, ["game.exe"], [V1], stored(V2), [offer]).to_json()
    assert out["files"] == [{"path": "game.exe", "source": PATCH, "bytes": 10, "chunk_bytes": 1000, "file_bytes": 2000,
                             "patch": offer.to_json()}]
    assert out["bytes"] == {CHUNKS: 0, PATCH: 10}


# ---- chains of patches (A -> B -> C) -------------------------------------------------------------

MID = entry("game.exe", B, E)  # the file in a build between V1 and V2 that the client never held


def test_a_chain_through_a_content_the_client_lacks_is_chosen_when_no_direct_patch_is_cheaper() -> None:
    first, second = option(V1.files[0], MID, 30), option(MID, EXE_V2, 40)
    chained = plan_update(V2, ["game.exe"], [V1], stored(V2), [first, second], max_steps=4)
    [choice] = chained.choices
    assert (choice.source, choice.steps, choice.bytes) == (PATCH, (first, second), 70)
    out = chained.to_json()["files"][0]
    assert out["patch"] == first.to_json() and out["chain"] == [first.to_json(), second.to_json()]
    assert out["chain"][0]["to"] == out["chain"][1]["from"] == MID.sha256

    direct = option(V1.files[0], EXE_V2, 60)
    assert plan_update(V2, ["game.exe"], [V1], stored(V2), [first, second, direct], max_steps=4).choices[0].steps == (direct,)
    dearer = option(V1.files[0], EXE_V2, 80)
    assert plan_update(V2, ["game.exe"], [V1], stored(V2), [first, second, dearer], max_steps=4).choices[0].steps == (first, second)


def test_a_client_that_applies_one_patch_per_file_is_never_offered_a_chain() -> None:
    chain = [option(V1.files[0], MID, 30), option(MID, EXE_V2, 40)]
    assert plan_update(V2, ["game.exe"], [V1], stored(V2), chain).choices[0].source == CHUNKS
    assert "chain" not in plan_update(V2, ["game.exe"], [V1], stored(V2), chain[1:], [MID.sha256]).to_json()["files"][0]


def test_chains_respect_the_step_limit_and_the_chunks_and_never_loop() -> None:
    contents = [entry("game.exe", bytes([n]) * 7000) for n in range(10, 16)]
    links = [option(V1.files[0], contents[0], 10)] + [option(a, b, 10) for a, b in zip(contents, contents[1:])]
    links += [option(contents[-1], EXE_V2, 10), option(contents[2], contents[0], 1)]  # and a loop back
    assert cheapest_routes({V1.files[0].sha256}, links, 7)[EXE_V2.sha256] == tuple(links[:7])
    assert EXE_V2.sha256 not in cheapest_routes({V1.files[0].sha256}, links, 6)
    costly = [option(V1.files[0], MID, 600), option(MID, EXE_V2, 600)]  # more than the 1000 bytes of chunks lacking
    assert plan_update(V2, ["game.exe"], [V1], stored(V2), costly, max_steps=4).choices[0].source == CHUNKS
    # A chain never passes through a content the client holds: it would start there.
    held_mid = cheapest_routes({V1.files[0].sha256, MID.sha256}, costly, 4)
    assert held_mid[EXE_V2.sha256] == (costly[1],)


def test_a_file_renamed_with_its_version_is_patched_from_its_old_name() -> None:
    record_v1, record_v2 = entry("game-1.9.dist-info/RECORD", A + B), entry("game-1.10.dist-info/RECORD", A + B + b"new")
    old = build("1", record_v1, entry("game-1.9.dist-info/LICENSE", C), entry("bin/RECORD", D))
    new = build("2", record_v2, entry("game-1.10.dist-info/LICENSE", C), entry("bin/RECORD", D))
    # The licence only moved (its content is held: its chunks are on disk), bin/RECORD is unchanged.
    assert [(s.path, t.path) for s, t in patch_pairs(new, [old])] == [(record_v1.path, record_v2.path)]


def test_a_renamed_file_with_no_versioned_twin_is_patched_from_the_file_of_the_same_name_closest_in_size() -> None:
    old = build("1", entry("old/config.ini", A), entry("elsewhere/config.ini", A[:600]), entry("other.ini", B))
    new = build("2", entry("moved/config.ini", A + b"!"))
    assert [s.path for s, _ in patch_pairs(new, [old])] == ["old/config.ini"]
    assert patch_pairs(build("3", entry("fresh.bin", E)), [old]) == [], "nothing resembles a new file: no patch"
    # A name alone is trusted only for a path the new build vacated, and for a size not far from the new file's.
    kept = build("4", entry("old/config.ini", A), entry("elsewhere/config.ini", A[:600]), entry("other.ini", B),
                 entry("moved/config.ini", A + b"!"))
    assert patch_pairs(kept, [old]) == []
    assert patch_pairs(build("5", entry("moved/config.ini", A * 5)), [build("1", entry("old/config.ini", A))]) == []


def test_content_moved_into_another_file_is_patched_from_the_file_that_holds_most_of_its_chunks() -> None:
    old = build("1", entry("a.pak", A, B), entry("b.pak", C, D))
    new = build("2", entry("a.pak", A, E), entry("b.pak", B, C, D))
    pairs = [(s.path, t.path) for s, t in patch_pairs(new, [old])]
    # b.pak holds B of old a.pak, but more of its own old self (C and D): only its own old file is used.
    assert sorted(pairs) == [("a.pak", "a.pak"), ("b.pak", "b.pak")]
    moved = build("3", entry("a.pak", C, D, E), entry("b.pak", A))
    assert sorted((s.path, t.path) for s, t in patch_pairs(moved, [old])) == [
        ("a.pak", "a.pak"), ("a.pak", "b.pak"), ("b.pak", "a.pak"), ("b.pak", "b.pak")]


def test_path_shapes_blank_numbers_only() -> None:
    assert path_shape("panda3d-1.10.15.dist-info/RECORD") == path_shape("panda3d-1.10.16.dist-info/RECORD")
    assert path_shape("libfoo.so.3") == "libfoo.so.#" and path_shape("data/levelA.pak") != path_shape("data/levelB.pak")


S1, S2, S3 = (entry(f"s{n}.lua", bytes([n + 10]) * 3000) for n in range(3))
T1, T2, T3 = (entry(f"s{n}.lua", bytes([n + 10]) * 3000 + b"v2") for n in range(3))
SMALL_V1, SMALL_V2 = build("1", S1, S2, S3), build("2", T1, T2, T3)


def bundle(*pairs: tuple[FileEntry, FileEntry], size: int) -> BundleOption:
    return BundleOption(sha(b"bundle%d" % size), size * 3, size, tuple((s.sha256, t.sha256) for s, t in pairs))


def test_a_bundle_cheaper_than_its_files_own_ways_makes_them_all_and_is_counted_once() -> None:
    own = [option(S1, T1, 300), option(S2, T2, 300), option(S3, T3, 300)]
    cheap = bundle((S1, T1), (S2, T2), (S3, T3), size=500)
    plan = plan_update(SMALL_V2, ["s0.lua", "s1.lua", "s2.lua"], [SMALL_V1], stored(SMALL_V2), own, bundles=[cheap])
    assert [(c.source, c.bytes) for c in plan.choices] == [(BUNDLE, 500), (BUNDLE, 0), (BUNDLE, 0)]
    assert plan.bytes_by_source() == {CHUNKS: 0, PATCH: 500}
    wire = plan.to_json()
    assert wire["bundles"] == [cheap.offer().to_json()] and {f["bundle"] for f in wire["files"]} == {cheap.object_sha}
    dear = bundle((S1, T1), (S2, T2), (S3, T3), size=900)
    assert {c.source for c in plan_update(SMALL_V2, ["s0.lua", "s1.lua", "s2.lua"], [SMALL_V1], stored(SMALL_V2), own,
                                          bundles=[dear]).choices} == {PATCH}


def test_a_bundle_needs_every_old_file_it_starts_from_and_a_file_is_in_one_bundle() -> None:
    partly = build("1b", S1, S2)  # without s2.lua's old content, the bundle cannot be applied here
    everything = bundle((S1, T1), (S2, T2), (S3, T3), size=10)
    plan = plan_update(SMALL_V2, ["s0.lua", "s1.lua"], [partly], stored(SMALL_V2), [], bundles=[everything])
    assert {c.source for c in plan.choices} == {CHUNKS} and "bundles" not in plan.to_json()
    first, second = bundle((S1, T1), (S2, T2), size=20), bundle((S2, T2), (S3, T3), size=30)
    plan = plan_update(SMALL_V2, ["s0.lua", "s1.lua", "s2.lua"], [SMALL_V1], stored(SMALL_V2), [], bundles=[second, first])
    assert [c.bundle for c in plan.choices] == [first, first, second]
    assert sum(c.bytes for c in plan.choices) == 50
