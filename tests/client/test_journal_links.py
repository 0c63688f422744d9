"""The swap's links: made beside and moved in, made again after a crash, and where the filesystem refuses
links (FAT drives, Windows without the right to make them), a copy of what they point to instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client import journal
from client.journal import Journal, apply, make_link


def tree(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "libfoo.so.1.2").write_bytes(b"library")
    (root / "Frame" / "Versions" / "A").mkdir(parents=True)
    (root / "Frame" / "Versions" / "A" / "code").write_bytes(b"framework")
    return root


def test_links_are_made_after_the_moves_and_again_after_a_crash(tmp_path: Path) -> None:
    root = tree(tmp_path / "game")
    record = Journal("g", "1", "d", [], [], [], [("lib/libfoo.so.1", "libfoo.so.1.2", False),
                                                ("Frame/Versions/Current", "A", True)])
    apply(root, record)
    apply(root, record)  # a crash after the links were made: applying the journal again changes nothing
    assert os.readlink(root / "lib" / "libfoo.so.1") == "libfoo.so.1.2"
    assert (root / "Frame" / "Versions" / "Current" / "code").read_bytes() == b"framework"
    moved = Journal("g", "2", "d", [], [], [], [("lib/libfoo.so.1", "libfoo.so.1.2", False)], [])
    (root / "lib" / "libfoo.so.1").unlink()
    (root / "lib" / "libfoo.so.1").write_bytes(b"a file where the link goes")  # the old build's file there
    apply(root, moved)
    assert os.readlink(root / "lib" / "libfoo.so.1") == "libfoo.so.1.2"


def test_where_links_are_refused_a_copy_of_the_target_goes_there_and_is_replaced_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "game")

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(1, "symbolic links are not allowed here")

    monkeypatch.setattr(journal.os, "symlink", refused)
    first = Journal("g", "1", "d", [], [], [], [("lib/libfoo.so.1", "libfoo.so.1.2", False),
                                               ("Frame/Versions/Current", "A", True)])
    apply(root, first)
    assert (root / "lib" / "libfoo.so.1").read_bytes() == b"library" and not (root / "lib" / "libfoo.so.1").is_symlink()
    assert (root / "Frame" / "Versions" / "Current" / "code").read_bytes() == b"framework"
    (root / "Frame" / "Versions" / "A" / "code").write_bytes(b"framework 2")
    again = Journal("g", "2", "d", [], [], [], [("Frame/Versions/Current", "A", True)], ["Frame/Versions/Current"])
    apply(root, again)  # the copy made before is ours (the old build had a link there): replaced
    assert (root / "Frame" / "Versions" / "Current" / "code").read_bytes() == b"framework 2"
    dropped = Journal("g", "3", "d", [], ["Frame/Versions/Current"], [], [], ["Frame/Versions/Current"])
    apply(root, dropped)
    assert not (root / "Frame" / "Versions" / "Current").exists()


def test_a_folder_of_the_friends_where_a_link_goes_is_never_removed(tmp_path: Path) -> None:
    root = tree(tmp_path / "game")
    (root / "saves").mkdir()
    (root / "saves" / "slot1").write_bytes(b"hours of play")
    with pytest.raises(Exception, match="is a folder, but the new build has a link there"):
        make_link(root / "saves", "lib", to_folder=True, replace_folder=False)
    assert (root / "saves" / "slot1").read_bytes() == b"hours of play"
