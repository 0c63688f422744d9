"""Properties of a build's symbolic links: whatever links a manifest names, `validate_links` ends with a verdict
(a ManifestError or none), and every link it lets through leads to a file or folder of the same build."""

from __future__ import annotations

import posixpath
from contextlib import suppress

import pytest
from hypothesis import given, strategies as st

from shared.errors import ManifestError
from shared.links import LinkEntry, check_target, resolve, validate_links
from tests.hostile import INVISIBLE, ODD_CHARACTERS

pytestmark = pytest.mark.same_on_every_backend  # pure: paths in, decisions out

FILES = ["bin/game", "lib/libfoo.so.1.2", "data/levels/1.pak", "Game.app/Contents/MacOS/game"]
FOLDERS = {"bin", "lib", "data", "data/levels", "Game.app", "Game.app/Contents", "Game.app/Contents/MacOS"}

# Parts that build paths and targets which climb, repeat, name the build's own files, or hide characters.
_PARTS = st.sampled_from(["bin", "lib", "data", "levels", "game", "libfoo.so.1.2", "1.pak", "l1", "l2", "l3", "..",
                          ".", "", "Game.app", "Contents", "MacOS", "/", "C:", *ODD_CHARACTERS])
_PATHS = st.lists(_PARTS, min_size=1, max_size=5).map("/".join)


@given(st.lists(st.tuples(_PATHS, _PATHS), max_size=6))
def test_any_links_get_a_verdict_and_those_carried_stay_inside_the_build(pairs: list[tuple[str, str]]) -> None:
    links = [LinkEntry(path, target) for path, target in pairs]
    try:
        validate_links(FILES, links)
    except ManifestError:
        return
    targets = {e.path: check_target(e.path, e.target) for e in links}
    link_folders = {posixpath.dirname(p) for p in targets} - {""}
    for entry in links:
        final = resolve(targets[entry.path], targets)
        assert final in FILES or final in FOLDERS or final in link_folders, (entry, final)
        assert not set(entry.path + entry.target) & set(INVISIBLE), entry
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(entry.path), entry.target))
        assert not joined.startswith("../") and joined != ".." and not joined.startswith("/"), entry


@given(st.lists(st.sampled_from(["l1", "l2", "l3", "bin/l4", "data/l5"]), min_size=1, max_size=5, unique=True))
def test_links_that_only_lead_to_one_another_in_a_ring_are_refused(ring: list[str]) -> None:
    """A loop must end in a refusal (and not in a hang or a RecursionError), however long the ring."""
    links = [LinkEntry(path, posixpath.relpath(ring[(i + 1) % len(ring)], posixpath.dirname(path) or "."))
             for i, path in enumerate(ring)]
    with pytest.raises(ManifestError):
        validate_links(FILES, links)


@given(st.lists(_PARTS, max_size=6).map("/".join), st.sampled_from(["l1", "bin/l1", "data/levels/l1", "a/b/c/d/l1"]))
def test_a_target_is_refused_with_a_manifest_error_or_names_a_path_inside_the_build(target: str, link: str) -> None:
    """(`link` is a valid build path: validate_links checks it before its target.)"""
    with suppress(ManifestError):
        named = check_target(link, target)
        assert named and not named.startswith("/") and ".." not in named.split("/")
