"""The client's planner: which files change, which may be deleted, and where every chunk comes from."""

import functools
import hashlib

from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS, ChunkRef
from shared.manifest import FileEntry, Manifest
from client import plan as plan_mod
from client.plan import Location, Target, index_chunks


@functools.cache
def target_of(manifest: Manifest) -> Target:
    return Target.of(manifest)


def plan(manifest: Manifest, *rest) -> plan_mod.Plan:
    """The plan for the target build `manifest` (made into the index the installer plans from)."""
    return plan_mod.plan(target_of(manifest), *rest)

INTRO, LEVEL1, LEVEL2, LEVEL2B, MUSIC, PATCH = b"intro", b"level one", b"level two", b"level 2!", b"music", b"patch"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str, *pieces: bytes, executable: bool = False) -> FileEntry:
    whole = b"".join(pieces)
    return FileEntry(path, len(whole), executable, sha(whole), tuple(ChunkRef(sha(p), len(p)) for p in pieces))


def build(version: str, *files: FileEntry) -> Manifest:
    return Manifest("hollow", version, DEFAULT_PARAMS, files)


V1 = build(
    "1.0",
    entry("game.exe", INTRO, executable=True),
    entry("data/levels.pak", LEVEL1, LEVEL2),
    entry("data/music.ogg", MUSIC),
    entry("readme.txt", b"v1"),
)
V2 = build(
    "2.0",
    entry("game.exe", INTRO, executable=True),
    entry("data/levels.pak", LEVEL1, LEVEL2B),
    entry("data/patch.bin", PATCH),
    entry("readme.txt", b"v1", executable=True),
)


def installed(manifest: Manifest, root: str = "/games/hollow") -> tuple[dict, list, dict]:
    """What the installer believes when `manifest` is installed intact at `root`."""
    on_disk = {f.path: (f.sha256, f.executable) for f in manifest.files}
    owned = [f.path for f in manifest.files]
    local = index_chunks((f"{root}/{f.path}", f) for f in manifest.files)
    return on_disk, owned, local


def paths(entries) -> list[str]:
    return sorted(f.path for f in entries)


def test_files_are_split_into_unchanged_mode_only_and_write():
    result = plan(V2, *installed(V1))
    assert paths(result.unchanged) == ["game.exe"]
    assert paths(result.modes) == ["readme.txt"]
    assert paths(result.write) == ["data/levels.pak", "data/patch.bin"]


def test_same_content_with_the_bit_dropped_is_mode_only():
    on_disk, owned, local = installed(V2)
    result = plan(V1, on_disk, owned, local)
    assert paths(result.modes) == ["readme.txt"]
    assert result.modes[0].executable is False


def test_a_fresh_install_writes_everything_and_fetches_every_chunk():
    result = plan(V1, {}, [], {})
    assert paths(result.write) == paths(V1.files)
    assert result.delete == ()
    assert result.fetch == V1.chunk_sizes()
    assert result.bytes_to_fetch == result.bytes_to_write == V1.total_size


def test_installed_build_to_itself_does_nothing():
    result = plan(V1, *installed(V1))
    assert (result.write, result.modes, result.delete, dict(result.fetch)) == ((), (), (), {})
    assert len(result.unchanged) == len(V1.files)


def test_deletes_only_owned_paths_the_target_lacks():
    on_disk, owned, local = installed(V1)
    on_disk["saves/slot1.sav"] = (sha(b"save"), False)  # the player's file: not the build's to delete
    result = plan(V2, on_disk, owned, local)
    assert result.delete == ("data/music.ogg",)


def test_deletes_are_sorted():
    old = build("1", entry("z.txt", b"z"), entry("a/b.txt", b"b"), entry("m.txt", b"m"))
    result = plan(build("2", entry("keep.txt", b"k")), *installed(old))
    assert result.delete == ("a/b.txt", "m.txt", "z.txt")


def test_a_rename_that_only_changes_case_deletes_the_old_name_and_writes_the_new_one():
    # On Windows and macOS 'data/a.bin' and 'Data/a.bin' are one file: keeping the new name as "unchanged"
    # and deleting the old name would delete the new file. Writing it (from local chunks) after the delete
    # is right on every filesystem; the journal skips the delete on replay once the new file is in place.
    old = build("1", entry("data/a.bin", b"same"))
    new = build("2", entry("Data/a.bin", b"same"))
    on_disk, owned, local = installed(old)
    on_disk["Data/a.bin"] = on_disk["data/a.bin"]  # what hashing the target path finds on such a filesystem
    result = plan(new, on_disk, owned, local)
    assert paths(result.write) == ["Data/a.bin"]
    assert result.unchanged == ()
    assert result.delete == ("data/a.bin",)
    assert result.fetch == {}


def test_chunks_held_locally_are_copied_and_the_rest_fetched():
    result = plan(V2, *installed(V1, root="/games/hollow"))
    assert dict(result.local) == {sha(LEVEL1): (Location("/games/hollow/data/levels.pak", 0),)}
    assert dict(result.fetch) == {sha(LEVEL2B): len(LEVEL2B), sha(PATCH): len(PATCH)}
    assert result.bytes_local == len(LEVEL1)
    assert result.bytes_to_fetch == len(LEVEL2B) + len(PATCH)


def test_chunks_only_unchanged_files_need_are_neither_copied_nor_fetched():
    result = plan(V2, *installed(V1))
    assert sha(INTRO) not in result.local
    assert sha(INTRO) not in result.fetch


def test_a_chunk_repeated_across_and_within_files_is_fetched_once():
    target = build("1", entry("a.pak", MUSIC, MUSIC, INTRO), entry("b.pak", MUSIC))
    result = plan(target, {}, [], {})
    assert dict(result.fetch) == {sha(MUSIC): len(MUSIC), sha(INTRO): len(INTRO)}
    assert result.bytes_to_fetch == len(MUSIC) + len(INTRO)
    assert result.bytes_to_write == 3 * len(MUSIC) + len(INTRO)


def test_every_local_copy_of_a_chunk_is_offered():
    old = build("1", entry("a.pak", INTRO, MUSIC), entry("b.pak", MUSIC))
    result = plan(build("2", entry("c.pak", MUSIC)), *installed(old, root="/g"))
    assert result.local[sha(MUSIC)] == (Location("/g/a.pak", len(INTRO)), Location("/g/b.pak", 0))
    assert dict(result.fetch) == {}


def test_a_downgrade_plans_like_an_upgrade():
    down = plan(V1, *installed(V2))
    assert paths(down.unchanged) == ["game.exe"]
    assert paths(down.modes) == ["readme.txt"]
    assert paths(down.write) == ["data/levels.pak", "data/music.ogg"]
    assert down.delete == ("data/patch.bin",)
    assert dict(down.local) == {sha(LEVEL1): (Location("/games/hollow/data/levels.pak", 0),)}
    assert dict(down.fetch) == {sha(LEVEL2): len(LEVEL2), sha(MUSIC): len(MUSIC)}


def test_a_damaged_file_is_rewritten_from_its_own_good_chunks():
    on_disk, owned, local = installed(V1)
    on_disk["data/levels.pak"] = (sha(b"damaged"), False)
    result = plan(V1, on_disk, owned, local)
    assert paths(result.write) == ["data/levels.pak"]
    assert set(result.local) == {sha(LEVEL1), sha(LEVEL2)}
    assert dict(result.fetch) == {}


def test_index_chunks_records_each_chunk_with_its_offset():
    f = entry("a.pak", INTRO, MUSIC, INTRO)
    assert index_chunks([("/g/a.pak", f)]) == {
        sha(INTRO): [Location("/g/a.pak", 0), Location("/g/a.pak", len(INTRO) + len(MUSIC))],
        sha(MUSIC): [Location("/g/a.pak", len(INTRO))],
    }


def test_plan_summary_for_json_output():
    assert plan(V2, *installed(V1)).to_json() == {
        "files_unchanged": 1,
        "files_mode_only": 1,
        "files_to_write": 2,
        "files_to_delete": 1,
        "links_to_make": 0,
        "bytes_to_write": len(LEVEL1 + LEVEL2B) + len(PATCH),
        "bytes_to_fetch_uncompressed": len(LEVEL2B) + len(PATCH),
        "bytes_from_local": len(LEVEL1),
        "peak_extra_disk": len(LEVEL1 + LEVEL2B) + len(PATCH),  # the new files sit beside the old until the swap
    }


def test_the_trackers_routes_are_read_and_anything_odd_means_chunks() -> None:
    from client.plan import CHUNKS, PATCH, parse_routes

    answer = {
        "files": [
            {"path": "a", "source": "patch", "bytes": 10, "chunk_bytes": 900, "file_bytes": 1000,
             "patch": {"object": "ab" * 32, "from": "cd" * 32, "size": 30, "stored_size": 10, "algorithm": "hdiff"}},
            {"path": "b", "source": "chunks", "bytes": 500, "chunk_bytes": 500},
            {"path": "c", "source": "patch", "bytes": 10, "chunk_bytes": 900},  # no patch named: chunks
            {"path": "d", "source": "patch", "bytes": "x", "chunk_bytes": 9},  # no usable patch: chunks, at their cost
            {"path": "not-asked", "source": "chunks", "bytes": 1, "chunk_bytes": 1},
            {"path": "e", "source": "patch", "bytes": 1, "chunk_bytes": 9,  # a name that would leave .mist/patches
             "patch": {"object": "../../../etc/victim", "from": "cd" * 32, "size": 3, "stored_size": 1, "algorithm": "hdiff"}},
            {"path": "f", "source": "patch", "bytes": 1, "chunk_bytes": 9,  # larger than one pack record
             "patch": {"object": "ef" * 32, "from": "cd" * 32, "size": 2**40, "stored_size": 1, "algorithm": "hdiff"}},
        ],
        "coming": [{"path": "a", "job": "j"}],
    }
    routes = parse_routes(answer, ["a", "b", "c", "d", "e", "f"])
    assert routes.get("a").source == PATCH and routes.get("a").patch.size == 30
    assert [routes.get(p).source for p in "bcdef"] == [CHUNKS] * 5
    assert routes.get("e").patch is None and routes.get("f").patch is None
    assert "not-asked" not in routes.by_path and routes.coming == ("a",)
    assert routes.bytes_by_source() == {CHUNKS: 500 + 900 + 9 + 9 + 9, PATCH: 10}
    assert parse_routes({"files": "nonsense"}, ["a"]).get("a").source == CHUNKS


def test_links_are_made_when_missing_or_pointing_elsewhere_and_old_ones_go() -> None:
    from shared.links import LinkEntry

    old = Manifest("hollow", "1.0", DEFAULT_PARAMS, V1.files, (LinkEntry("start", "game.exe"), LinkEntry("old", "readme.txt")))
    new = Manifest("hollow", "2.0", DEFAULT_PARAMS, V1.files, (LinkEntry("start", "game.exe"), LinkEntry("music", "data/music.ogg")))
    on_disk, owned, local = installed(old)
    owned += ["start", "old"]
    result = plan(new, on_disk, owned, local, {"start": "game.exe", "old": "readme.txt"})
    assert [e.path for e in result.links] == ["music"] and result.delete == ("old",) and not result.write
    moved = plan(new, on_disk, owned, local, {"start": "readme.txt"})
    assert sorted(e.path for e in moved.links) == ["music", "start"]


def test_an_update_that_removes_most_of_an_install_says_so_and_a_normal_one_does_not() -> None:
    from client.plan import removes_most

    assert removes_most(BuildIndex.of(V1), plan(V2, *installed(V1))) == ""
    tiny = build("0.1-wrong", entry("game.exe", INTRO, executable=True))
    why = removes_most(BuildIndex.of(V1), plan(tiny, *installed(V1)))
    assert why.startswith("hollow 0.1-wrong removes 3 of the 4 files of 1.0 here (")
    assert "data/levels.pak" in why and why.endswith("and writes 0")


def test_the_download_estimate_counts_only_chunks_no_local_file_holds_each_once() -> None:
    from client.plan import CHUNKS, Route, Routes, estimate_download

    result = plan(V2, *installed(V1))
    routes = Routes({"data/levels.pak": Route(CHUNKS, 0, 0, file_bytes=(len(LEVEL1) + len(LEVEL2B)) // 2),
                     "data/patch.bin": Route(CHUNKS, 0, 0, file_bytes=len(PATCH))})
    # LEVEL1 is on disk: only LEVEL2B is fetched, at the file's 1:2 compression; the patch file whole.
    assert estimate_download(result, routes) == {CHUNKS: round(len(LEVEL2B) * 0.5) + len(PATCH), "patch": 0}


def test_installed_chunks_locate_what_the_whole_index_does():
    """The installer locates only the chunks an update needs; the plan is the one a whole index gives."""
    from client.plan import InstalledChunks

    on_disk, owned, local = installed(V1)
    lazy = InstalledChunks([(f"/games/hollow/{f.path}", f) for f in V1.files])
    assert plan(V2, on_disk, owned, lazy) == plan(V2, on_disk, owned, local)
    assert lazy.only(set(local)) == local and lazy.only(list(local)[:1]) == {h: local[h] for h in list(local)[:1]}
    assert lazy.only({"0" * 64}) == {}


def test_installed_builds_locate_what_the_whole_index_does():
    """The update plan asks the installed builds' indexes: the same locations, from the files that hold them."""
    from client.plan import InstalledBuilds

    on_disk, owned, local = installed(V1)
    lazy = InstalledBuilds([("/games/hollow", BuildIndex.of(V1))])
    assert plan(V2, on_disk, owned, lazy) == plan(V2, on_disk, owned, local)
    assert lazy.only(set(local)) == local and lazy.only(list(local)[:1]) == {h: local[h] for h in list(local)[:1]}
    assert lazy.only({"0" * 64}) == {}


def test_an_installed_build_the_target_was_made_from_is_asked_by_chunk_position(monkeypatch) -> None:
    """The update's target index is made from the installed one and keeps its chunk positions: the plan asks the
    installed index by position (no name lookups) and gets the plan a whole index gives; an index that was not
    made from it (scanned, or made from the same one as another) is asked by name."""
    from shared import build_index
    from client.plan import InstalledBuilds

    monkeypatch.setattr(build_index, "_COMPACT_ABOVE", float("inf"))  # keep positions apart from sorted order
    v1 = Manifest("hollow", "1.0", DEFAULT_PARAMS, tuple(sorted(V1.files, key=lambda e: e.path)))
    v2 = Manifest("hollow", "2.0", DEFAULT_PARAMS, tuple(sorted(V2.files, key=lambda e: e.path)))
    installed_index = BuildIndex.scan(v1.canonical_bytes())
    made = BuildIndex.following(installed_index, v1.canonical_bytes(), v2.canonical_bytes())
    sibling = BuildIndex.following(installed_index, v1.canonical_bytes(), v2.canonical_bytes())
    assert made is not None and sibling is not None and made.chunks.moved
    assert made.follows(installed_index) and not installed_index.follows(made) and not made.follows(sibling)
    assert not BuildIndex.scan(v2.canonical_bytes()).follows(installed_index)
    on_disk, owned, local = installed(V1)
    asked: list[str] = []
    original = BuildIndex.places
    monkeypatch.setattr(BuildIndex, "places", lambda self, *args: asked.append("by name") or original(self, *args))
    lazy = InstalledBuilds([("/games/hollow", installed_index)])
    expected = plan_mod.plan(Target(BuildIndex.scan(v2.canonical_bytes()), "d"), on_disk, owned, local)
    by_position = plan_mod.plan(Target(made, "d"), on_disk, owned, lazy)
    assert asked == [] and by_position.local == expected.local and by_position.fetch == expected.fetch
    assert by_position.write == expected.write and by_position.local
    plan_mod.plan(Target(sibling, "d"), on_disk, owned, InstalledBuilds([("/games/hollow", made)]))
    assert asked == ["by name"]


def test_files_taken_by_chunks_report_their_chunks_not_the_patch_offered() -> None:
    from shared.plan_wire import CHUNKS, PATCH, Route

    patched = Route(PATCH, 145, 89_700, 8_000_000)
    routes = plan_mod.Routes({"world.pak": patched, "readme.txt": Route(CHUNKS, 28, 28, 28)}, ("x",))
    assert routes.by_chunks([]) is routes
    taken = routes.by_chunks(["world.pak", "readme.txt", "absent.bin"])
    assert taken.get("world.pak") == Route(CHUNKS, 89_700, 89_700, 8_000_000)
    assert taken.get("readme.txt") == routes.get("readme.txt") and taken.coming == ("x",)
    assert "absent.bin" not in taken.by_path and routes.get("world.pak") is patched  # the original is unchanged


def test_a_file_written_in_place_needs_room_for_its_changes_not_its_size() -> None:
    old = FileEntry("big.pak", 3 * 65536, False, "a" * 64, tuple(ChunkRef(c * 64, 65536) for c in "123"))
    new = FileEntry("big.pak", 4 * 65536, False, "b" * 64, tuple(ChunkRef(c * 64, 65536) for c in "1e34"))
    small = FileEntry("readme.txt", 10, False, "c" * 64, (ChunkRef("d" * 64, 10),))
    made = plan_mod.Plan(Target.of(Manifest("g", "2", DEFAULT_PARAMS, (new, small))), (), (), (new, small), (), {}, {})
    assert made.peak_extra_disk == 4 * 65536 + 10  # staged beside the old ones
    in_place = made.writing_in_place({"big.pak": old})
    # Chunks e and 4 are not where they were (3 is), and the file grows by one chunk.
    assert in_place.peak_extra_disk == 2 * 65536 + 65536 + 10 and in_place.write == made.write
