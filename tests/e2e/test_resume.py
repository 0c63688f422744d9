"""Killing the client or the push with SIGKILL at any point, then running the same command again."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import Person
from tests.e2e.gametree import MB, assert_same_tree, make_tree, next_version

GAME = "resume"


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, admin: Person) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("resume-builds")
    trees = {"1": make_tree(base / "1", seed=7, small_files=80, large=(12 * MB, 4 * MB))}
    trees["2"] = next_version(trees["1"], base / "2", seed=8)
    admin.run("mistpipe", "new-game", GAME, "--title", "Resume")
    for version, tree in trees.items():
        admin.json("mistpipe", "push", GAME, str(tree), "--version", version)
    return trees


def killed(person: Person, point: str, *args: str) -> None:
    result = person.run("mist", *args, "--json", check=False, env={"MIST_CRASH_AT": point})
    assert result.returncode == -signal.SIGKILL, (point, result.returncode, result.stderr)


def test_install_killed_while_fetching_resumes_without_refetching(builds, friend: Person, tmp_path) -> None:
    target = tmp_path / GAME
    killed(friend, "fetched-batch", "install", GAME, "--dir", str(target), "--version", "1")
    staged = list((target / ".mist" / "staging").iterdir())
    assert staged, "the killed install left no staged files"
    resumed = friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    assert_same_tree(builds["1"], target)
    assert resumed["bytes_reused"] > 0  # verified chunks from the first run were kept
    full = sum(p.stat().st_size for p in builds["1"].rglob("*") if p.is_file())
    assert resumed["bytes_downloaded"] + resumed["bytes_reused"] <= full + 4096 * 64


@pytest.mark.parametrize("point", ["fetched-batch", "staged"])
def test_update_killed_before_the_swap_leaves_the_old_build_playable(builds, friend, tmp_path, point) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    killed(friend, point, "update", GAME, "--to", "2")
    assert_same_tree(builds["1"], target)
    again = friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)
    if point == "staged":
        assert again["bytes_downloaded"] == 0  # everything was already staged and verified


@pytest.mark.parametrize("point", ["journal-written", "mid-swap"])
def test_update_killed_during_the_swap_finishes_on_the_next_run(builds, friend, tmp_path, point) -> None:
    target = tmp_path / GAME
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    killed(friend, point, "update", GAME, "--to", "2")
    again = friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)
    assert again["bytes_downloaded"] == 0
    assert friend.json("mist", "verify", GAME)["ok"] is True


def test_install_killed_mid_swap_then_update_elsewhere_finishes_the_swap_first(builds, friend, tmp_path) -> None:
    target = tmp_path / GAME
    killed(friend, "mid-swap", "install", GAME, "--dir", str(target), "--version", "1")
    friend.json("mist", "install", GAME, "--dir", str(target), "--version", "1")
    assert_same_tree(builds["1"], target)
    friend.json("mist", "update", GAME, "--to", "2")
    assert_same_tree(builds["2"], target)


def test_push_killed_after_a_batch_resumes_without_reuploading(admin: Person, tmp_path) -> None:
    tree = make_tree(tmp_path / "big", seed=11, small_files=20, large=(48 * MB,))
    admin.run("mistpipe", "new-game", "pushresume", "--title", "Push Resume")
    result = admin.run("mistpipe", "push", "pushresume", str(tree), "--version", "1", "--json",
                       check=False, env={"MIST_CRASH_AT": "pushed-batch"})
    assert result.returncode == -signal.SIGKILL
    done = admin.json("mistpipe", "push", "pushresume", str(tree), "--version", "1")
    assert 0 < done["chunks_uploaded"] < done["chunks_total"]
    assert admin.json("mistpipe", "ls", "pushresume")["games"][0]["builds"][0]["version"] == "1"
