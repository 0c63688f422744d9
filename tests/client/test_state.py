"""The client's install records: a build is read as its compact index, kept beside client.db, made once."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.state import State
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from shared.errors import ManifestError
from shared.manifest import FileEntry, Manifest


def file(path: str, content: bytes) -> FileEntry:
    chunked = chunk_bytes(content)
    return FileEntry(path, chunked.size, False, chunked.sha256, chunked.chunks)


def manifest(game: str, version: str = "1", *files: FileEntry) -> Manifest:
    return Manifest(game, version, DEFAULT_PARAMS, files or (file("a.bin", game.encode() * 100),))


def test_an_install_is_read_without_its_build_until_the_build_is_asked_for(tmp_path: Path) -> None:
    state = State(tmp_path)
    try:
        good = manifest("alpha")
        state.record("alpha", tmp_path / "alpha", good.canonical_bytes(), good.digest(), "1")
        state.record("beta", tmp_path / "beta", b"{damaged", "b" * 64, "1")  # a damaged one
        found = state.get("alpha")
        assert found is not None and found.dir == tmp_path / "alpha" and found.digest == good.digest()
        assert list(found.build.files()) == list(good.files)
        assert state.get("gamma") is None
        assert state.held_manifest("alpha") == (good.digest(), good.canonical_bytes())
        assert state.held_manifest("gamma") is None
        beta = next(i for i in state.installs() if i.game == "beta")  # listing the installs reads no build
        with pytest.raises(ManifestError):
            beta.build  # the damaged one's bytes go to the strict parse, which refuses them
    finally:
        state.close()


def test_an_install_without_a_kept_index_gets_one_made_once_and_a_damaged_one_is_made_again(tmp_path: Path) -> None:
    old = manifest("alpha")
    state = State(tmp_path)
    try:  # as an install recorded before indexes were kept: its manifest in client.db, no index
        state._db.execute(
            "INSERT INTO installs (game, dir, version, digest, manifest, installed_at) VALUES (?,?,?,?,?,?)",
            ("alpha", str(tmp_path / "alpha"), "1", old.digest(), old.canonical_bytes(), 0.0),
        )
        assert state.build_index(old.digest()) is None and state.held_manifest("alpha") == (old.digest(), old.canonical_bytes())
        assert list(state.index(old.digest()).files()) == list(old.files)
        kept = state.build_index(old.digest())
        assert kept is not None
    finally:
        state.close()
    (tmp_path / "builds" / f"{old.digest()}.index").write_bytes(kept[:-1] + bytes([kept[-1] ^ 1]))
    state = State(tmp_path)
    try:
        assert list(state.index(old.digest()).files()) == list(old.files)
        assert state.build_index(old.digest()) == kept  # made again from the manifest, and kept anew
    finally:
        state.close()


def test_the_next_builds_index_is_made_from_the_held_ones_and_kept_when_it_is_installed(tmp_path: Path) -> None:
    kept, changed = file("kept.bin", b"k" * 5000), file("data.bin", b"d" * 9000)
    old = manifest("alpha", "1", changed, kept)
    new = manifest("alpha", "2", file("data.bin", b"e" * 9000), kept, file("new.bin", b"n"))
    state = State(tmp_path)
    try:
        state.record("alpha", tmp_path / "alpha", old.canonical_bytes(), old.digest(), "1")
        held = state.held_manifest("alpha")
        made = state.index_of(new.digest(), new.canonical_bytes(), held)
        assert made._uses is not None, "the held build's index was not used (a scan made it)"
        assert list(made.files()) == list(new.files)
        assert state.index_of(new.digest(), new.canonical_bytes(), held) is made  # once per process
        state.record("alpha", tmp_path / "alpha", new.canonical_bytes(), new.digest(), "2")
        assert state.build_index(old.digest()) is None  # no install has it any more
        assert sorted(p.name for p in (tmp_path / "builds").iterdir()) == [f"{new.digest()}.index", f"{new.digest()}.manifest"]
        assert state.held_manifest("alpha") == (new.digest(), new.canonical_bytes())
        stored = state.build_index(new.digest())
        assert stored is not None
    finally:
        state.close()
    state = State(tmp_path)
    try:
        assert list(state.index(new.digest()).files()) == list(new.files)
        assert state.build_index(new.digest()) == stored  # read back, not made again
    finally:
        state.close()


def test_an_index_windows_will_not_replace_is_left_to_be_made_again_and_the_install_is_still_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from client import state as state_mod

    build = manifest("alpha")
    replace = os.replace

    def refused(source: object, target: object) -> None:
        if str(target).endswith(".index"):  # as Windows answers while another process reads the file
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        replace(source, target)  # type: ignore[arg-type]  # the paths os.replace takes

    state = State(tmp_path)
    try:
        state.index_of(build.digest(), build.canonical_bytes())  # made in this process, kept at record
        monkeypatch.setattr(state_mod.os, "replace", refused)
        state.record("alpha", tmp_path / "alpha", build.canonical_bytes(), build.digest(), "1")
        assert state.get("alpha") is not None and state.held_manifest("alpha") == (build.digest(), build.canonical_bytes())
        assert sorted(p.name for p in (tmp_path / "builds").iterdir()) == [f"{build.digest()}.manifest"]  # no part left
    finally:
        state.close()
    monkeypatch.setattr(state_mod.os, "replace", replace)
    state = State(tmp_path)
    try:
        assert list(state.index(build.digest()).files()) == list(build.files)  # made again, and kept this time
        assert state.build_index(build.digest()) is not None
    finally:
        state.close()


def test_a_kept_manifest_that_is_gone_is_listed_as_lost_and_said_when_read(tmp_path: Path) -> None:
    from client.errors import RecordLost

    build = manifest("alpha")
    state = State(tmp_path)
    try:
        state.record("alpha", tmp_path / "alpha", build.canonical_bytes(), build.digest(), "1")
        assert state.lost() == []
        (tmp_path / "builds" / f"{build.digest()}.manifest").unlink()
        assert [i.game for i in state.lost()] == ["alpha"]
        assert state.held_manifest("alpha") is None  # the next manifest then comes whole
        (tmp_path / "builds" / f"{build.digest()}.index").unlink(missing_ok=True)
        state.close()
        state = State(tmp_path)
        with pytest.raises(RecordLost, match="fetches it again from the tracker"):
            state.index(build.digest())
        state.restore_manifest(build.digest(), build.canonical_bytes())
        assert state.lost() == [] and list(state.index(build.digest()).files()) == list(build.files)
    finally:
        state.close()


def test_fetched_manifests_get_files_of_their_own_and_a_crash_leftover_goes_with_the_next_record(tmp_path: Path) -> None:
    import os
    import time

    from client import state as state_mod

    state = State(tmp_path)
    try:
        build = manifest("alpha")
        one, two = state.incoming_manifest(build.digest()), state.incoming_manifest(build.digest())
        assert one != two and one.parent == two.parent == tmp_path / "builds"
        with pytest.raises(KeyError):
            state.incoming_manifest("../../elsewhere")
        one.write_bytes(build.canonical_bytes())
        two.write_bytes(b"a fetch running now")
        old = time.time() - state_mod.INCOMING_KEPT - 60
        os.utime(one, (old, old))
        state.record("alpha", tmp_path / "alpha", one, build.digest(), "1")  # recorded from a file: copied
        assert (tmp_path / "builds" / f"{build.digest()}.manifest").read_bytes() == build.canonical_bytes()
        assert not one.exists() and two.read_bytes() == b"a fetch running now"
        assert state.held_manifest_file("alpha") == (build.digest(), tmp_path / "builds" / f"{build.digest()}.manifest")
    finally:
        state.close()


def test_recording_a_build_installed_here_already_writes_neither_its_manifest_nor_its_index_again(tmp_path: Path) -> None:
    state = State(tmp_path)
    try:
        build = manifest("alpha")
        state.record("alpha", tmp_path / "alpha", build.canonical_bytes(), build.digest(), "1")
        state.index(build.digest())
        kept = [tmp_path / "builds" / f"{build.digest()}.{kind}" for kind in ("manifest", "index")]
        before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in kept]
        state.record("alpha", tmp_path / "alpha", build.canonical_bytes(), build.digest(), "1")  # a repair
        state.record("beta", tmp_path / "beta", build.canonical_bytes(), build.digest(), "1")  # the same build elsewhere
        assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in kept] == before
        assert state.get("beta") is not None and list(state.index(build.digest()).files()) == list(build.files)
        damaged = bytearray(kept[0].read_bytes())
        damaged[10] ^= 1  # a bit flipped on disk: the next repair's record writes it again, or every delta fails
        kept[0].write_bytes(bytes(damaged))
        state.record("alpha", tmp_path / "alpha", build.canonical_bytes(), build.digest(), "1")
        assert kept[0].read_bytes() == build.canonical_bytes()
    finally:
        state.close()
