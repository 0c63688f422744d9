"""A manifest file put in place whole, without being held in memory: linked where the volume allows, else copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared import durable

pytestmark = pytest.mark.same_on_every_backend  # files only


def test_a_file_on_the_same_volume_is_linked_and_replaces_what_was_there(tmp_path: Path) -> None:
    source, target = tmp_path / "fetched.part", tmp_path / "kept.manifest"
    source.write_bytes(b"x" * 3_000_000)
    target.write_bytes(b"an older manifest")
    durable.link_or_copy_atomic(source, target)
    assert target.read_bytes() == b"x" * 3_000_000 and os.path.samefile(source, target)
    source.unlink()  # the fetcher removes its file: the kept one stays
    assert target.read_bytes() == b"x" * 3_000_000 and not (tmp_path / "kept.manifest.tmp").exists()


def test_where_links_are_refused_the_file_is_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refused)
    source, target = tmp_path / "fetched.part", tmp_path / "kept.manifest"
    source.write_bytes(os.urandom(3_000_000))  # more than one piece of the copy
    durable.link_or_copy_atomic(source, target)
    assert target.read_bytes() == source.read_bytes() and not os.path.samefile(source, target)
    assert not (tmp_path / "kept.manifest.tmp").exists()
