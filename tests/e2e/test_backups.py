"""`mist-admin backup` of a running server while a push runs, `restore` into a new data directory, and a new
server on it where friends log in as before and install every build bit for bit.

In the PostgreSQL pass (tests/backends.py), the original server runs on a fresh PostgreSQL database and
the restore goes to SQLite, so the backup moves between the two.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, BIN, Person, Server, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree, next_version
from tests.e2e.test_faults import http, token
from tests.fresh_database import configured_postgres, fresh_postgres
from tracker.backups.backup import backup

ALICE, BOB = "alice-password-1", "bob-password-1"


@dataclass
class World:
    base: Path
    database_url: str  # the original server's ("" is SQLite in its data directory)
    data: Path
    trees: dict[str, Path]  # "game version" -> the folder pushed
    taken: dict  # the backup's --json, taken while a push ran
    restored: dict  # the restore's --json
    server: Server  # the new server, on the restored data and the old port
    public_key: str
    alice: Person  # logged in to the old server, beta 1 installed
    alice_token: str  # an access token the old server issued


def admin_cli(*args: str, database_url: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "MIST_DATABASE_URL": database_url}
    return subprocess.run([BIN / "mist-admin", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("backups")
    with ExitStack() as stack:
        url = stack.enter_context(fresh_postgres()) if configured_postgres() else ""
        old = start_server(base / "data", {"MIST_DATABASE_URL": url})
        try:
            admin = Person(base / "admin-home", ADMIN_PASSWORD)
            admin.run("mistpipe", "login", old.url, "--user", "admin")
            trees = {"alpha 1": make_tree(base / "trees" / "alpha-1", seed=71, small_files=60, large=(2 * MB, 1 * MB))}
            trees["alpha 2"] = next_version(trees["alpha 1"], base / "trees" / "alpha-2", seed=72)
            trees["alpha 3"] = next_version(trees["alpha 2"], base / "trees" / "alpha-3", seed=73)
            trees["beta 1"] = make_tree(base / "trees" / "beta-1", seed=81, small_files=30, large=(1 * MB,))
            trees["beta 2"] = next_version(trees["beta 1"], base / "trees" / "beta-2", seed=82)
            admin.run("mistpipe", "new-game", "alpha", "--title", "Alpha")
            admin.run("mistpipe", "new-game", "beta", "--title", "Beta", "--private")
            for key, tree in trees.items():
                game, version = key.split()
                pushed = admin.json("mistpipe", "push", game, str(tree), "--version", version, "--wait")
                assert version == "1" or pushed["patches"]["made"] >= 1  # the worker made patches into it
            admin.run("mistpipe", "user", "add", "alice", env={"MIST_PASSWORD": ALICE})
            admin.run("mistpipe", "user", "add", "bob", env={"MIST_PASSWORD": BOB})
            admin.run("mistpipe", "grant", "alice", "beta")
            alice = Person(base / "alice-home", ALICE)
            alice.run("mist", "login", old.url, "--user", "alice")
            alice.json("mist", "install", "beta", "--version", "1", "--dir", str(base / "alice-beta"))
            alice_token = token(old, "alice", ALICE)
            public_key = json.loads(http("GET", f"{old.url}/api/info")[1])["public_key"]

            # A push killed after its first batch leaves chunks no build names yet. Once the backup has dumped the
            # database, the push runs again (at zstd level 19, so slowly) and commits while the backup copies.
            big = make_tree(base / "trees" / "alpha-4", seed=91, small_files=5, large=(12 * MB, 12 * MB))
            killed = admin.run("mistpipe", "push", "alpha", str(big), "--version", "4", "--yes", check=False,
                               env={"MIST_CRASH_AT": "pushed-batch"})  # another tree: it drops most of 3
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            trees["alpha 4"] = big
            backing = subprocess.Popen(
                [BIN / "mist-admin", "backup", str(base / "backup"), "--data", str(old.data), "--json"],
                env={**os.environ, "MIST_DATABASE_URL": url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, stdin=subprocess.DEVNULL,
            )
            assert backing.stderr is not None
            said = backing.stderr.readline()  # the first line comes once the snapshot is taken
            assert said.startswith("Dumped the database"), said + backing.stderr.read()
            pushing = subprocess.Popen(
                [BIN / "mistpipe", "push", "alpha", str(big), "--version", "4", "--level", "19", "--yes", "--json"],
                env={**os.environ, "MIST_HOME": str(admin.home), "MIST_PASSWORD": ADMIN_PASSWORD},
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
            )
            made_out, made_err = backing.communicate(timeout=300)
            _, pushed_err = pushing.communicate(timeout=300)
            assert backing.returncode == 0, made_err
            assert pushing.returncode == 0, pushed_err
        finally:
            stop(old)

        restored = admin_cli("restore", str(base / "backup"), "--data", str(base / "restored"), "--json")
        assert restored.returncode == 0, restored.stderr
        new = start_server(base / "restored", {"MIST_DATABASE_URL": ""}, port=urlparse(old.url).port or 0)
        try:
            yield World(base, url, old.data, trees, json.loads(made_out), json.loads(restored.stdout), new,
                        public_key, alice, alice_token)
        finally:
            stop(new)


def test_the_backup_taken_during_a_push_holds_what_was_committed_before_it(world: World) -> None:
    taken = world.taken
    assert taken["games"] == 2 and taken["builds"] == 5  # alpha 4 was committed after the snapshot
    assert taken["objects_copied"] == taken["objects"] and taken["bytes_copied"] == taken["object_bytes"] > 0
    assert taken["rows"]["patches"] >= 3 and taken["rows"]["grants"] == 1 and taken["rows"]["users"] == 3
    assert sorted(taken["files"]) == ["jwt.secret", "signing.key"]
    assert taken["dialect"] == ("postgresql" if world.database_url else "sqlite")
    listed = json.loads((world.base / "backup" / "backup.json").read_text())["builds"]
    assert sorted(listed) == ["alpha 1", "alpha 2", "alpha 3", "beta 1", "beta 2"]
    assert world.restored["builds"] == taken["builds"] and world.restored["objects_copied"] == taken["objects"]
    assert world.restored["revision_from"] == world.restored["revision_to"] == taken["revision"]


def test_friends_log_in_as_before_and_install_every_build_bit_for_bit(world: World) -> None:
    server, base = world.server, world.base
    assert json.loads(http("GET", f"{server.url}/api/info")[1])["public_key"] == world.public_key
    builds = json.loads((base / "backup" / "backup.json").read_text())["builds"]
    bob_sees = {}
    for key in builds:
        game, version = key.split()
        user, password = ("alice", ALICE) if game == "beta" else ("bob", BOB)
        person = Person(base / f"fresh-{game}-{version}", password)
        person.run("mist", "login", server.url, "--user", user)  # the old password: accounts came back
        person.json("mist", "install", game, "--version", version, "--dir", str(base / f"installed-{game}-{version}"))
        assert_same_tree(world.trees[key], base / f"installed-{game}-{version}")
        if user == "bob":
            bob_sees = {g["slug"] for g in person.json("mist", "ls")["games"]}
    assert bob_sees == {"alpha"}  # beta is still private, and bob still has no grant
    alpha = json.loads(http("GET", f"{server.url}/api/games/alpha",
                                headers={"Authorization": f"Bearer {world.alice_token}"})[1])
    assert sorted(b["version"] for b in alpha["builds"]) == sorted(k.split()[1] for k in builds if k.startswith("alpha"))


def test_a_client_of_the_old_server_carries_on_without_logging_in_again(world: World) -> None:
    status, _ = http("GET", f"{world.server.url}/api/games", headers={"Authorization": f"Bearer {world.alice_token}"})
    assert status == 200  # the JWT secret came back: a token of the old server is still good
    assert "beta" in {g["slug"] for g in world.alice.json("mist", "ls")["games"]}
    moved = world.alice.json("mist", "update", "beta", "--to", "2")  # manifests verify with the pinned key
    assert moved["files_by_source"]["patch"] >= 1, moved  # the worker's patch objects came back too
    assert_same_tree(world.trees["beta 2"], world.base / "alice-beta")


def test_backing_up_again_copies_only_what_is_new(world: World) -> None:
    again = admin_cli("backup", str(world.base / "backup"), "--data", str(world.data), "--json",
                      database_url=world.database_url)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["builds"] == 6
    assert 0 < report["objects_copied"] < report["objects"]  # alpha 4's, committed after the first backup's snapshot
    once_more = json.loads(admin_cli("backup", str(world.base / "backup"), "--data", str(world.data), "--json",
                                     database_url=world.database_url).stdout)
    assert (once_more["objects_copied"], once_more["bytes_copied"], once_more["objects_pruned"]) == (0, 0, 0)
    assert once_more["objects"] == report["objects"]


def test_a_backup_with_a_damaged_object_is_refused_and_no_server_starts_on_it(world: World) -> None:
    damaged = world.base / "damaged-backup"
    shutil.copytree(world.base / "backup", damaged)
    victim = sorted(p for p in (damaged / "store").rglob("*") if p.is_file())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    refused = admin_cli("restore", str(damaged), "--data", str(world.base / "from-damaged"))
    assert refused.returncode == 1
    assert "damaged" in refused.stderr and "Restore another copy" in refused.stderr, refused.stderr
    started = subprocess.run([BIN / "mist-server", "--data", str(world.base / "from-damaged"), "--port", "1"],
                             capture_output=True, text=True, env={**os.environ, "MIST_DATABASE_URL": ""}, timeout=60)
    assert started.returncode != 0 and "did not finish" in started.stderr


def test_an_interrupted_backup_is_refused(world: World) -> None:
    def power_cut(name: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup(world.data, world.base / "cut", world.database_url, on_object=power_cut)
    refused = admin_cli("restore", str(world.base / "cut"), "--data", str(world.base / "from-cut"))
    assert refused.returncode == 1
    assert "did not finish" in refused.stderr and "mist-admin backup" in refused.stderr, refused.stderr
    assert not (world.base / "from-cut").exists()
