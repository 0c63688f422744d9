"""The planner reads a build through its compact index (the plan route) or a parsed manifest (the patch jobs, the
commit, the news): both answer every question alike, so the plans and the patches worth making are the same."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from shared.build_index import BuildIndex
from shared.manifest import Manifest
from tests.shared.test_build_index_lookups import POOL, builds
from tracker.planner import ParsedBuild, patch_pairs, plan_update, write_chunks

pytestmark = pytest.mark.same_on_every_backend  # pure: the update planner

NAMES = st.lists(st.sampled_from(POOL + ["", "zz" * 32, POOL[1][:62]]), max_size=10)
PATHS = st.lists(st.sampled_from(["a", "b/c", "é/x", "nope", "b", "q.pak", "日本/y"]), unique=True)


@given(builds(), NAMES, PATHS)
def test_a_parsed_build_answers_as_its_index(manifest: Manifest, names: list[str], paths: list[str]) -> None:
    index, parsed = BuildIndex.scan(manifest.canonical_bytes()), ParsedBuild(manifest)
    assert list(index.files()) == list(parsed.files()) and len(index) == len(parsed)
    assert index.files_at(paths) == parsed.files_at(paths)
    assert [index.has_file(p) for p in paths] == [parsed.has_file(p) for p in paths]
    assert [index.has_content(f.sha256) for f in manifest.files] == [parsed.has_content(f.sha256) for f in manifest.files]
    assert not index.has_content(POOL[0]) and not parsed.has_content(POOL[0])  # a chunk's name is no file's content
    assert index.chunks_among(names) == parsed.chunks_among(names)
    assert index.holders(names) == parsed.holders(names)
    assert list(index.sizes()) == list(parsed.sizes())


@given(builds(), builds(), st.data())
def test_plans_and_patch_pairs_are_the_same_from_indexes_and_from_parsed_manifests(
    old: Manifest, new: Manifest, data: st.DataObject
) -> None:
    new = Manifest(new.game, "2", new.chunking, new.files)
    write = data.draw(st.permutations([f.path for f in new.files]))
    stored = {h: 10 + POOL.index(h) for h in write_chunks(new, write)}
    old_index, new_index = BuildIndex.scan(old.canonical_bytes()), BuildIndex.scan(new.canonical_bytes())
    assert write_chunks(new_index, write) == set(stored)
    assert plan_update(new_index, write, [old_index], stored, []) == plan_update(new, write, [old], stored, [])
    assert patch_pairs(new_index, [old_index], write) == patch_pairs(new, [old], write)
    assert patch_pairs(new_index, [old_index]) == patch_pairs(new, [old])
