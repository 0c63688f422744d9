"""Symbolic links in a build: carried when they resolve inside it, refused (all at once) when they do not."""

from __future__ import annotations

import pytest

from shared import manifest as manifest_mod
from shared.chunking import DEFAULT_PARAMS
from shared.errors import ManifestError
from shared.links import LinkEntry, check_target, folder_links, validate_links
from shared.manifest import FORMAT_VERSION, LINKS_FORMAT, FileEntry, Manifest

FILES = ["lib/libfoo.so.1.2.3", "Game.framework/Versions/A/Game", "Game.framework/Versions/A/Headers/game.h", "bin/game"]


def links(*pairs: tuple[str, str]) -> list[LinkEntry]:
    return [LinkEntry(p, t) for p, t in pairs]


@pytest.mark.parametrize("pairs", [
    [("lib/libfoo.so.1", "libfoo.so.1.2.3")],
    [("lib/libfoo.so", "libfoo.so.1"), ("lib/libfoo.so.1", "libfoo.so.1.2.3")],  # a chain
    [("Game.framework/Versions/Current", "A"), ("Game.framework/Game", "Versions/Current/Game"),
     ("Game.framework/Headers", "Versions/Current/Headers")],  # a macOS framework: links to folders, through links
    [("game", "bin/game"), ("bin/libfoo.so", "../lib/libfoo.so.1.2.3")],
])
def test_links_that_resolve_inside_the_build_are_carried(pairs) -> None:
    validate_links(FILES, links(*pairs))


def test_which_links_point_to_folders() -> None:
    entries = links(("Game.framework/Versions/Current", "A"), ("Game.framework/Game", "Versions/Current/Game"),
                    ("Game.framework/Headers", "Versions/Current/Headers"))
    assert folder_links(FILES, entries) == {"Game.framework/Versions/Current", "Game.framework/Headers"}


@pytest.mark.parametrize(("pair", "problem"), [
    (("lib/evil", "/etc/passwd"), "absolute"),
    (("lib/evil", "C:/Windows"), "absolute"),
    (("lib/evil", "../../etc/passwd"), "outside the build"),
    (("evil", ".."), "outside the build"),
    (("lib/gone", "libgone.so"), "dangling"),
    (("lib/self", "."), "not normalised"),
    (("lib/odd", "a/../libfoo.so.1.2.3"), "not normalised"),
    (("lib/odd", "lib\\x"), "portably"),
    (("lib", "bin"), "name of a file or folder"),
    (("bin/game", "../lib/libfoo.so.1.2.3"), "name of a file or folder"),
    (("Bin/GAME", "../lib/libfoo.so.1.2.3"), "name of a file or folder"),  # by case: one file on Windows and macOS
    (("../x", "bin/game"), "'..'"),
])
def test_a_link_that_leaves_the_build_or_dangles_is_refused(pair, problem) -> None:
    with pytest.raises(ManifestError, match="rejected") as info:
        validate_links(FILES, links(pair))
    assert problem in str(info.value)


def test_loops_and_things_under_links_are_refused() -> None:
    with pytest.raises(ManifestError, match="loop"):
        validate_links(FILES, links(("a", "b"), ("b", "a")))
    with pytest.raises(ManifestError, match="lies under the link"):
        validate_links(FILES, links(("lib2", "lib"), ("lib2/x", "../bin/game")))


def test_every_bad_link_is_named_at_once() -> None:
    with pytest.raises(ManifestError) as info:
        validate_links(FILES, links(("a", "/abs"), ("b", "gone"), ("c", "../../out"), ("ok", "bin/game")))
    message = str(info.value)
    assert message.startswith("3 link problems") and "'a'" in message and "'b'" in message and "'c'" in message
    assert "'ok'" not in message


def test_check_target_names_the_build_path() -> None:
    assert check_target("lib/libfoo.so", "libfoo.so.1") == "lib/libfoo.so.1"
    assert check_target("a/b/c", "../../x/y") == "x/y"


def _manifest(link_entries: tuple[LinkEntry, ...] = ()) -> Manifest:
    empty = FileEntry("bin/game", 0, True, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ())
    return Manifest("hollow", "1.0", DEFAULT_PARAMS, (empty,), link_entries)


def test_a_manifest_without_links_keeps_the_first_format_and_one_with_them_round_trips() -> None:
    plain = _manifest()
    assert plain.to_json()["format"] == FORMAT_VERSION and "links" not in plain.to_json()
    assert manifest_mod.parse(plain.canonical_bytes()) == plain
    linked = _manifest((LinkEntry("game", "bin/game"),))
    assert linked.to_json()["format"] == LINKS_FORMAT
    assert manifest_mod.parse(linked.canonical_bytes()) == linked
    assert linked.digest() != plain.digest()


def test_a_manifest_with_a_bad_link_or_a_malformed_entry_is_rejected() -> None:
    with pytest.raises(ManifestError, match="outside the build"):
        manifest_mod.parse(_manifest((LinkEntry("up", "../../x"),)).canonical_bytes())
    obj = _manifest((LinkEntry("game", "bin/game"),)).to_json()
    obj["links"] = [{"path": "game", "target": 5}]
    with pytest.raises(ManifestError, match="link entry"):
        manifest_mod.from_json(obj)
    obj["links"] = []
    with pytest.raises(ManifestError, match="non-empty"):
        manifest_mod.from_json(obj)
    del obj["links"]
    with pytest.raises(ManifestError, match="exactly the keys"):
        manifest_mod.from_json(obj)  # format 2 must carry its links
