"""What a new user tripped on (issue 13), tried again with the real commands: a push or an update that would
empty a friend's game asks first, Mist never removes a file a friend changed, builds carry their symbolic
links, and the messages on the way say what happened and what to do."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_faults import one_line_error

GAME = "guarded"


def links(root: Path) -> dict[str, str]:
    """Every symbolic link under root with its target."""
    return {p.relative_to(root).as_posix(): os.readlink(p) for p in root.rglob("*") if p.is_symlink()}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, admin: Person) -> dict[str, Path]:
    """1.0 with a library chain and a framework-like folder link; 1.1 moves one link and drops another."""
    base = tmp_path_factory.mktemp("guarded")
    old = make_tree(base / "1.0", seed=5, small_files=40, large=(MB,))
    (old / "lib").mkdir()
    (old / "lib" / "libfoo.so.1.2").write_bytes(b"\x7fELF library" * 1000)
    (old / "lib" / "libfoo.so.1").symlink_to("libfoo.so.1.2")
    (old / "lib" / "libfoo.so").symlink_to("libfoo.so.1")
    (old / "Frame" / "Versions" / "A").mkdir(parents=True)
    (old / "Frame" / "Versions" / "A" / "Frame").write_bytes(b"framework code")
    (old / "Frame" / "Versions" / "Current").symlink_to("A")
    (old / "Frame" / "Frame").symlink_to("Versions/Current/Frame")
    new = base / "1.1"
    shutil.copytree(old, new, symlinks=True)
    (new / "lib" / "libfoo.so.1.3").write_bytes(b"\x7fELF library v3" * 1000)
    (new / "lib" / "libfoo.so.1").unlink()
    (new / "lib" / "libfoo.so.1").symlink_to("libfoo.so.1.3")
    (new / "Frame" / "Frame").unlink()
    (new / "notes.txt").write_text("what changed")
    admin.run("mistpipe", "new-game", GAME, "--title", "Guarded")
    admin.run("mistpipe", "push", GAME, str(old), "--version", "1.0", "--launch", "bin/game --windowed",
              "--notes", "First release.\nEverything is new.")
    admin.run("mistpipe", "push", GAME, str(new), "--version", "1.1", "--notes", "Library 1.3.")
    return {"1.0": old, "1.1": new}


def test_an_empty_folder_is_never_pushed(builds, admin: Person, tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    one_line_error(admin.run("mistpipe", "push", GAME, str(tmp_path / "empty"), "--version", "2.0", check=False),
                   "holds no files")
    assert [b["version"] for b in admin.json("mistpipe", "ls", GAME)["games"][0]["builds"]] == ["1.0", "1.1"]


def test_a_push_that_drops_most_of_the_latest_build_needs_yes(builds, admin: Person, tmp_path) -> None:
    half = tmp_path / "half"
    (half / "bin").mkdir(parents=True)
    shutil.copy2(builds["1.0"] / "bin" / "game", half / "bin" / "game")
    one_line_error(admin.run("mistpipe", "push", GAME, str(half), "--version", "0.9-wrong", check=False),
                   "drops", "of the", "--yes")
    assert [b["version"] for b in admin.json("mistpipe", "ls", GAME)["games"][0]["builds"]] == ["1.0", "1.1"]


def test_links_that_leave_the_build_are_refused_all_at_once(builds, admin: Person, tmp_path) -> None:
    tree = tmp_path / "linked"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "real.txt").write_text("x")
    (tree / "sub" / "passwd").symlink_to("/etc/passwd")
    (tree / "sub" / "up").symlink_to("../../outside")
    (tree / "sub" / "gone").symlink_to("nothing-here")
    (tree / "sub" / "fine").symlink_to("real.txt")
    one_line_error(admin.run("mistpipe", "push", GAME, str(tree), "--version", "9", check=False),
                   "3 link problems", "'sub/passwd'", "'sub/up'", "'sub/gone'")


def test_a_friend_gets_the_links_notes_and_launch_command(builds, server: Server, admin: Person, friend: Person, tmp_path) -> None:
    target = tmp_path / "games" / GAME
    installed = friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.0")
    assert installed["change"] == "install" and installed["links_made"] == 4
    assert_same_tree(builds["1.0"], target)
    assert links(target) == links(builds["1.0"])
    listing = friend.run("mist", "ls", GAME).stdout
    assert "First release." in listing and "Everything is new." in listing and "Library 1.3." in listing
    assert friend.json("mist", "ls", GAME)["games"][0]["builds"][0]["launch"] == "bin/game --windowed"
    assert friend.json("mist", "verify", GAME)["ok"]
    (target / "lib" / "libfoo.so").unlink()
    damaged = friend.run("mist", "verify", GAME, check=False)
    assert damaged.returncode == 1 and "lib/libfoo.so" in damaged.stdout and f"mist verify {GAME} --repair" in damaged.stdout
    friend.json("mist", "verify", GAME, "--repair")
    assert links(target) == links(builds["1.0"])

    dry = friend.json("mist", "update", GAME, "--to", "1.1", "--dry-run")
    moved = friend.json("mist", "update", GAME, "--to", "1.1")
    assert moved["change"] == "update" and moved["previous_version"] == "1.0"
    assert_same_tree(builds["1.1"], target)
    assert links(target) == links(builds["1.1"])  # one moved, one gone
    assert dry["plan"]["bytes_by_source"]["chunks"] <= 2 * moved["bytes_downloaded"] + 4096  # the estimate holds
    again = friend.run("mist", "update", GAME, "--to", "1.1")
    assert "already up to date" in again.stdout
    back = friend.run("mist", "update", GAME, "--version", "1.0")  # --version works as --to does
    assert "Downgraded guarded from 1.1 to 1.0" in back.stdout
    assert links(target) == links(builds["1.0"])
    friend.run("mist", "uninstall", GAME)
    assert not target.exists()


def test_an_update_that_removes_most_of_an_install_asks_and_never_removes_a_changed_file(
        builds, admin: Person, friend: Person, tmp_path) -> None:
    target = tmp_path / "games" / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1.1")
    mine = target / "assets" / "level1" / "item1.txt"
    mine.write_text("my own notes, kept")  # the friend changed a file of the game
    small = tmp_path / "small"
    (small / "bin").mkdir(parents=True)
    shutil.copy2(builds["1.1"] / "bin" / "game", small / "bin" / "game")
    admin.run("mistpipe", "push", GAME, str(small), "--version", "2.0-demo", "--yes")
    refused = friend.run("mist", "update", GAME, check=False)
    one_line_error(refused, "removes", "of the", "files of 1.1", "--yes")
    assert (target / "data" / "pak0.bin").exists()
    moved = friend.json("mist", "update", GAME, "--yes")
    assert moved["files_kept"] == ["assets/level1/item1.txt"]
    assert mine.read_text() == "my own notes, kept"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "assets/level1/item1.txt", "bin/game"]
    admin.run("mistpipe", "rm", GAME, "2.0-demo")


def test_a_failed_first_install_leaves_no_folder_and_a_bad_folder_is_named(builds, friend: Person, tmp_path) -> None:
    target = tmp_path / "never"
    one_line_error(friend.run("mist", "install", GAME, "--dir", str(target), "--version", "7.7", check=False),
                   "has no version '7.7'", f"mist ls {GAME}")
    assert not target.exists()
    one_line_error(friend.run("mist", "install", GAME, "--dir", "/proc/mist-cannot-be-here", check=False),
                   "cannot make the folder", "--dir")
    one_line_error(friend.run("mist", "update", "no-such-game", check=False), "no game 'no-such-game'", "mist ls")


def test_install_without_a_folder_uses_the_games_folder(builds, friend: Person, tmp_path) -> None:
    friend.run("mist", "settings", "--games-folder", str(tmp_path / "library"))
    assert friend.json("mist", "settings")["games_folder"] == str(tmp_path / "library")
    installed = friend.json("mist", "install", GAME, "--version", "1.0")
    assert installed["files_written"] > 0 and (tmp_path / "library" / GAME / "bin" / "game").is_file()
    assert installed["plan"]["bytes_by_source"]["chunks"] > 0  # a fresh install's estimate is not "0 B"
    friend.run("mist", "uninstall", GAME)


def test_ls_without_the_tracker_shows_what_is_installed(builds, friend: Person, tmp_path) -> None:
    friend.json("mist", "install", GAME, "--dir", str(tmp_path / "g"), "--version", "1.0")
    session = friend.session()
    session["url"] = "http://127.0.0.1:9"  # nothing listens there
    (friend.home / "credentials-mist.json").write_text(__import__("json").dumps(session))
    offline = friend.json("mist", "ls")
    assert offline["offline"] and offline["games"] == [{"slug": GAME, "installed": {"version": "1.0", "dir": str(tmp_path / "g")}}]
    assert "out of reach" in friend.run("mist", "ls").stdout


def test_messages_name_the_right_tool_and_the_next_step(builds, server: Server, admin: Person, tmp_path) -> None:
    one_line_error(admin.run("mistpipe", "ls", "guardd", check=False), "no game 'guardd'", "`mistpipe ls` lists")
    home = Person(tmp_path / "typed", "admin-secret-1")
    said = home.run("mistpipe", "login", server.url.removeprefix("http://") + "/admin", "--user", "admin").stderr
    assert "using http" in said and f"Logged in to {server.url} as admin" in said
    tree = builds["1.1"]
    pushed = admin.run("mistpipe", "push", GAME, str(tree), "--version", "1.1-again").stdout
    job = pushed.split("job ")[1].split(" ")[0]
    assert f"mistpipe job {job} --wait" in pushed
    finished = admin.run("mistpipe", "job", job, "--wait").stdout
    assert finished.startswith(f"Job {job}: done.") and "{" not in finished  # words, not a Python dict
    admin.run("mistpipe", "rm", GAME, "1.1-again")
    for tool in ("mist", "mistpipe"):
        assert admin.run(tool, "--version").stdout.startswith(f"{tool} ")
