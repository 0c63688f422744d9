"""Removing a build: `mistpipe rm` and `mistpipe gc` free what only it needed, and friends still install the rest bit for bit."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from mistpipe.scan import scan
from tests.e2e.test_faults import http
from tests.e2e.conftest import Person, Server, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree

GAME = "tidy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A server of its own whose collector has no grace period, so the test need not wait a day (or fake one)."""
    srv = start_server(tmp_path_factory.mktemp("gc-server"), {"MIST_GC_GRACE_SECONDS": "0"})
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def two_versions(base: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    one = make_tree(base / "1", seed=7, small_files=20, large=(1 * MB,))
    (one / "data" / "table.bin").write_bytes(rng.randbytes(100 * 1024))
    (one / "data" / "retired.bin").write_bytes(rng.randbytes(300 * 1024))  # only version 1 has it
    two = base / "2"
    shutil.copytree(one, two)
    with open(two / "data" / "table.bin", "ab") as f:
        f.write(rng.randbytes(3000))  # changed in place: a patch from 1 is worth making
    (two / "data" / "retired.bin").unlink()
    return one, two


def patch_objects(server: Server) -> set[str]:
    return {row[0] for row in server.sql("SELECT object_sha FROM patches WHERE object_sha IS NOT NULL")}


def test_rm_and_gc_free_only_what_the_removed_build_needed(server: Server, admin: Person, friend: Person, tmp_path: Path) -> None:
    one, two = two_versions(tmp_path / "builds")
    admin.run("mistpipe", "new-game", GAME, "--title", "Tidy")
    first = admin.json("mistpipe", "push", GAME, str(one), "--version", "1", "--wait")
    second = admin.json("mistpipe", "push", GAME, str(two), "--version", "2", "--wait")
    assert first["patches"]["made"] == 0  # nothing to patch from
    assert second["patches"]["made"] >= 1 and second["patches"]["patch_bytes"] > 0
    patches = patch_objects(server)
    assert len(patches) == second["patches"]["made"]  # --wait returned after they were recorded
    assert all(server.store_path(p).exists() for p in patches)

    chunks_one, chunks_two = set(scan(one, GAME, "1").chunk_sizes()), set(scan(two, GAME, "2").chunk_sizes())
    only_one = chunks_one - chunks_two
    assert only_one and chunks_one & chunks_two

    removed = admin.json("mistpipe", "rm", GAME, "1", "--wait")
    assert removed["removed"] == "1" and removed["gc"]["done"]
    assert removed["gc"]["result"]["objects_removed"] >= len(only_one) + 1
    assert removed["gc"]["result"]["bytes_freed"] > 0
    assert not any(server.store_path(h).exists() for h in only_one)
    assert not server.store_path(first["digest"]).exists()
    assert all(server.store_path(h).exists() for h in chunks_two)
    assert server.store_path(second["digest"]).exists()
    assert all(server.store_path(p).exists() for p in patches)  # patches into 2 serve friends still on 1

    again = admin.json("mistpipe", "gc")
    assert again["done"] and again["result"]["objects_removed"] == 0

    listing = admin.json("mistpipe", "ls", GAME)["games"][0]
    assert listing["latest"] == "2" and [b["version"] for b in listing["builds"]] == ["2"]
    friend.json("mist", "install", GAME, "--dir", str(tmp_path / "game"))
    assert_same_tree(two, tmp_path / "game")


def test_rm_of_a_version_that_does_not_exist_says_so(server: Server, admin: Person) -> None:
    admin.run("mistpipe", "new-game", "empty", "--title", "Empty")
    refused = admin.run("mistpipe", "rm", "empty", "9", check=False)
    assert refused.returncode != 0 and "has no version '9'" in refused.stderr


def test_a_user_cannot_remove_builds_or_collect(server: Server, friend: Person) -> None:
    bearer = {"Authorization": f"Bearer {friend.session()['access_token']}"}
    for method, path in (("DELETE", f"/api/games/{GAME}/builds/2"), ("POST", "/api/admin/gc")):
        status, body = http(method, server.url + path, headers=bearer)
        assert status == 403 and b"admin" in body


def test_a_friend_still_on_a_removed_build_updates_by_its_patch(
    server: Server, admin: Person, friend: Person, tmp_path: Path,
) -> None:
    one, two = two_versions(tmp_path / "builds")
    admin.run("mistpipe", "new-game", "kept", "--title", "Kept")
    admin.json("mistpipe", "push", "kept", str(one), "--version", "1", "--wait")
    friend.json("mist", "install", "kept", "--dir", str(tmp_path / "game"))
    admin.json("mistpipe", "push", "kept", str(two), "--version", "2", "--wait")
    admin.json("mistpipe", "rm", "kept", "1", "--wait")

    moved = friend.json("mist", "update", "kept", "--to", "2")
    assert moved["files_by_source"]["patch"] == 1, moved  # data/table.bin, from the content only build 1 had
    assert moved["bytes_by_source"]["patch"] < 10_000
    assert_same_tree(two, tmp_path / "game")
