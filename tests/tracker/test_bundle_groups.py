"""Which changed files the push's job puts in patch bundles (tracker/jobs/patching.py, pure part)."""

from __future__ import annotations

import pytest

from shared import patch_bundle
from shared.manifest import FileEntry
from tracker.jobs.patching import bundle_groups

pytestmark = pytest.mark.same_on_every_backend  # pure: no database, no store


def entry(path: str, size: int, content: str) -> FileEntry:
    return FileEntry(path, size, False, content * 64, ())


def test_each_new_content_is_bundled_once_from_its_own_old_file_in_path_order(monkeypatch) -> None:
    a_old, a_new = entry("b/a.lua", 900, "1"), entry("b/a.lua", 900, "2")
    moved_from = entry("old/a.lua", 900, "3")
    c_old, c_new = entry("a/c.lua", 700, "4"), entry("a/c.lua", 700, "5")
    big_old, big_new = entry("big.pak", 10, "6"), entry("big.pak", patch_bundle.MAX_MEMBER_FILE + 1, "7")
    groups = bundle_groups([(moved_from, a_new), (a_old, a_new), (c_old, c_new), (big_old, big_new)])
    assert groups == [[(c_old, c_new), (a_old, a_new)]]
    monkeypatch.setattr(patch_bundle, "MAX_MEMBERS", 2)
    files = [(entry(f"f{i}", 600, "8"), entry(f"f{i}", 600, "9abcdef"[i])) for i in range(5)]
    assert [len(g) for g in bundle_groups(files)] == [2, 2], "cut at the limit; the group of one left to its patch"
