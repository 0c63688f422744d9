"""Updates that write what changed, not whole files: into a clone where the filesystem clones (a loop-mounted
btrfs image made here), else into the installed file behind an undo journal (this machine's ext4); a SIGKILL
anywhere still leaves the old build or the new one."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Person
from tests.e2e.gametree import MB, assert_same_tree
from tests.e2e.test_resume import killed

GAME = "inplace"
META = 1 * MB  # what an update writes besides file contents: journals, the filesystem's metadata and its journal


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, admin: Person) -> dict[str, Path]:
    """1: an 8 MB pack and two small files; 2: three small overwrites in the pack, one small file edited;
    3: the pack cut to 6 MB with one more overwrite (it shrinks)."""
    rng = random.Random(19)
    base = tmp_path_factory.mktemp("inplace-builds")
    pack = bytearray(rng.randbytes(8 * MB))
    trees: dict[str, Path] = {}
    for version, edits, cut, note in (("1", (), None, "first"), ("2", (1 * MB, 4 * MB, 7 * MB), None, "second"),
                                      ("3", (2 * MB,), 6 * MB, "third")):
        for at in edits:
            pack[at:at + 3000] = rng.randbytes(3000)
        if cut is not None:
            del pack[cut:]
        root = base / version
        (root / "data").mkdir(parents=True)
        (root / "data" / "world.pak").write_bytes(pack)
        (root / "readme.txt").write_text(f"the {note} release\n")
        (root / "launch.cfg").write_text("fullscreen=1\n")
        trees[version] = root
    admin.run("mistpipe", "new-game", GAME, "--title", "In place")
    for version, tree in trees.items():
        admin.json("mistpipe", "push", GAME, str(tree), "--version", version)
    return trees


def test_without_clones_only_the_changed_chunks_are_written_behind_an_undo_journal(builds, friend: Person,
                                                                                   ext4: Mounted) -> None:
    target = ext4.folder / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    dry = friend.json("mist", "update", GAME, "--to", "2", "--dry-run")
    before = ext4.bytes_written()
    update = friend.json("mist", "update", GAME, "--to", "2")
    device_wrote = ext4.bytes_written() - before
    assert_same_tree(builds["2"], target)
    assert update["files_in_place"] == 1 and 0 < update["bytes_saved_for_undo"] <= update["bytes_written"]
    # The pack's changed chunks are fetched, not the patch the tracker offered for it, and the plan (and the dry
    # run before it) says so.
    planned, fetched = update["plan"]["bytes_by_source"], update["bytes_downloaded"]
    assert update["bytes_by_source"]["patch"] == planned["patch"] == dry["plan"]["bytes_by_source"]["patch"] == 0
    assert 0.9 * fetched <= planned["chunks"] == dry["plan"]["bytes_by_source"]["chunks"] <= fetched
    assert {f["path"]: f["source"] for f in dry["files"]}["data/world.pak"] == "chunks"
    # Nor does it need the 8 MB pack's size free beside it: its changed chunks and their undo copies.
    assert dry["plan"]["peak_extra_disk"] == update["plan"]["peak_extra_disk"] < 2 * update["bytes_written"]
    assert update["bytes_written"] < 2 * MB  # three 3 KB edits: a few chunks, not the 8 MB file
    assert update["disk_bytes_written"] > 0 and 0 < device_wrote <= 2 * update["bytes_written"] + META
    before = ext4.bytes_written()
    shrink = friend.json("mist", "update", GAME, "--to", "3")
    device_wrote = ext4.bytes_written() - before
    assert_same_tree(builds["3"], target)
    assert shrink["files_in_place"] == 1 and 0 < device_wrote <= 2 * shrink["bytes_written"] + 2 * MB + META
    assert not (target / ".mist").exists()
    assert friend.json("mist", "verify", GAME)["ok"] is True


@pytest.mark.parametrize("point", ["undo-sealed", "fetched-batch", "staged"])
def test_killed_before_the_swap_the_old_build_is_put_back_then_the_update_resumes(builds, friend: Person,
                                                                                 tmp_path: Path, point: str) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    killed(friend, point, "update", GAME, "--to", "2")
    checked = friend.json("mist", "verify", GAME)  # finds the interrupted update and undoes it first
    assert checked["ok"] is True and checked["version"] == "1"
    assert_same_tree(builds["1"], target)
    friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)


@pytest.mark.parametrize("point", ["journal-written", "mid-swap"])
def test_killed_after_the_journal_the_new_build_stands(builds, friend: Person, tmp_path: Path, point: str) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    killed(friend, point, "update", GAME, "--to", "2")
    again = friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)
    assert again["bytes_downloaded"] == 0 and again["change"] == "current"


@dataclass(frozen=True)
class Mounted:
    folder: Path
    device: str  # the loop device's name under /sys/block

    def bytes_written(self) -> int:
        """What the filesystem has sent to its device so far, once everything pending was: data, metadata and
        the journal. The kernel's per-process count (`disk_bytes_written`) counts pages dirtied instead, and on
        Linux 6.16+ a file cached in large folios (up to 2 MiB) counts a whole folio for a small write into it:
        three 60 KB writes into an 8 MiB file counted 8 MiB, while the device got 200 KB (this machine's 6.18)."""
        subprocess.run(["sync", "-f", str(self.folder)], check=True)
        return int((Path("/sys/block") / self.device / "stat").read_text().split()[6]) * 512


@contextmanager
def loop_mounted(tmp_path: Path, kind: str) -> Iterator[Mounted]:
    """A filesystem of `kind` in a sparse image, loop-mounted for one test (root: the suite runs as root)."""
    image, mount = tmp_path / f"{kind}.img", tmp_path / kind
    with open(image, "wb") as f:
        f.truncate(256 * MB)
    make = {"btrfs": ["mkfs.btrfs", "-q"], "ext4": ["mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0"]}
    subprocess.run([*make[kind], str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True, capture_output=True)
    try:
        source = subprocess.run(["findmnt", "-n", "-o", "SOURCE", str(mount)], check=True, capture_output=True, text=True)
        yield Mounted(mount, Path(source.stdout.strip()).name)
    finally:
        subprocess.run(["umount", str(mount)], check=True, capture_output=True)


@pytest.fixture
def btrfs(tmp_path: Path) -> Iterator[Mounted]:
    with loop_mounted(tmp_path, "btrfs") as mounted:
        yield mounted


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Mounted]:
    with loop_mounted(tmp_path, "ext4") as mounted:
        yield mounted


def test_where_files_clone_the_update_writes_the_changed_chunks_once_and_never_touches_the_old_file(
        builds, friend: Person, btrfs: Mounted) -> None:
    target = btrfs.folder / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    killed(friend, "fetched-batch", "update", GAME, "--to", "2")
    assert_same_tree(builds["1"], target)  # the clone was written, the installed file not
    update = friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)
    assert update["files_in_place"] == 1 and update["bytes_saved_for_undo"] == 0
    # The kernel's page count here, not the device's: btrfs writes each commit's metadata trees twice (DUP), about
    # 0.9 MB on this image whatever the update wrote.
    assert update["bytes_written"] < 2 * MB and 0 < update["disk_bytes_written"] <= update["bytes_written"] + META
