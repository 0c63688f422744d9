"""Rotating the tracker's signing key with `mist-admin rotate-key` on a real server: friends' `mist` and the
admin's `mistpipe` follow the signed hand-over (through two rotations), a standalone seeder and a friend's
daemon follow it too, and a key changed without a hand-over is still refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.signing import Signer, fingerprint
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, Server, free_port, start_server
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_faults import one_line_error
from tests.e2e.test_peers import LOOPBACK, Friend, Stack, new_friend

GAME = "keyed"
ROTATED = "the tracker's signing key was rotated; now trusting {}, handed over by the key you trusted"


def stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


def rotate(data: Path, *flags: str) -> dict:
    result = subprocess.run([BIN / "mist-admin", "rotate-key", "--data", str(data), "--json", *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def restart(server: Server, then: Callable[[Path], object]) -> Server:
    """Stop the server, run `then` on its data directory, start it again where its clients know it."""
    stop(server)
    then(server.data)
    return start_server(server.data, port=int(server.url.rsplit(":", 1)[1]))


def friend(admin: Person, url: str, name: str, home: Path) -> Person:
    admin.run("mistpipe", "user", "add", name, env={"MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(home / name, FRIEND_PASSWORD)
    person.run("mist", "login", url, "--user", name)
    return person


def expire_access_token(person: Person, tool: str) -> None:
    """As if the 15 minutes had passed: the next command refreshes, and hears the tracker's key."""
    session = person.session(tool)
    session["access_expires"] = 0
    (person.home / f"credentials-{tool}.json").write_text(json.dumps(session))


@pytest.fixture
def server(tmp_path: Path):
    """A server of this test's own (it is stopped, rotated and restarted)."""
    box = [start_server(tmp_path / "data")]
    yield box
    stop(box[0])


def test_friends_follow_two_rotations_and_refuse_keys_nothing_handed_over(server: list[Server], tmp_path: Path) -> None:
    url = server[0].url
    admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
    admin.run("mistpipe", "login", url, "--user", "admin")
    admin.run("mistpipe", "new-game", GAME, "--title", "Keyed")
    builds = {v: make_tree(tmp_path / "builds" / v, seed=90 + i, small_files=12, large=(1 * MB,)) for i, v in enumerate(("1.0", "1.1", "1.2"))}
    admin.json("mistpipe", "push", GAME, str(builds["1.0"]), "--version", "1.0")
    alice, bob = friend(admin, url, "alice", tmp_path), friend(admin, url, "bob", tmp_path)
    first_key = alice.session()["public_key"]
    alice.json("mist", "install", GAME, "--dir", str(tmp_path / "alice-game"))
    bob.json("mist", "install", GAME, "--dir", str(tmp_path / "bob-game"))

    busy = subprocess.run([BIN / "mist-admin", "rotate-key", "--data", str(server[0].data)], capture_output=True, text=True, timeout=60)
    one_line_error(busy, "is in use by pid", "stop that tracker")  # never under a running tracker

    # First rotation: A → B. Alice updates to a build pushed after it; her client follows and says so once.
    rotation: dict = {}
    server[0] = restart(server[0], lambda data: rotation.update(rotate(data)))
    second_key = rotation["new_key"]
    assert rotation["old_key"] == first_key and rotation["handed_over"] and rotation["builds_resigned"] == 1
    admin.json("mistpipe", "push", GAME, str(builds["1.1"]), "--version", "1.1")
    updated = alice.run("mist", "update", GAME, "--json")
    assert updated.stderr.count(ROTATED.format(fingerprint(second_key))) == 1, updated.stderr
    assert json.loads(updated.stdout)["version"] == "1.1"
    assert_same_tree(builds["1.1"], tmp_path / "alice-game")
    assert alice.session()["public_key"] == second_key
    assert "rotated" not in alice.run("mist", "ls").stderr  # once, not on every command

    expire_access_token(admin, "mistpipe")  # mistpipe hears the new key at its refresh, and follows it the same way
    listed = admin.run("mistpipe", "ls", GAME)
    assert ROTATED.format(fingerprint(second_key)) in listed.stderr and admin.session("mistpipe")["public_key"] == second_key

    # Second rotation: B → C. Bob, still pinned to A, walks A → B → C; Alice B → C.
    server[0] = restart(server[0], lambda data: rotation.update(rotate(data)))
    third_key = rotation["new_key"]
    assert rotation["old_key"] == second_key
    bob_update = bob.run("mist", "update", GAME, "--json")
    assert ROTATED.format(fingerprint(third_key)) in bob_update.stderr
    assert_same_tree(builds["1.1"], tmp_path / "bob-game")
    assert bob.session()["public_key"] == third_key
    back = alice.run("mist", "update", GAME, "--to", "1.0", "--json")  # a build signed before any rotation, re-signed since
    assert ROTATED.format(fingerprint(third_key)) in back.stderr
    assert_same_tree(builds["1.0"], tmp_path / "alice-game")

    # The key leaked: a rotation without a hand-over. Every client refuses until its owner logs in with the fingerprint.
    server[0] = restart(server[0], lambda data: rotation.update(rotate(data, "--leaked")))
    fourth_key = rotation["new_key"]
    assert rotation["handed_over"] is False
    admin.run("mistpipe", "login", url, "--user", "admin", "--fingerprint", rotation["new_fingerprint"])
    admin.json("mistpipe", "push", GAME, str(builds["1.2"]), "--version", "1.2")
    refused = alice.run("mist", "update", GAME, check=False)
    one_line_error(refused, "signing key changed since login", "signature", fingerprint(fourth_key), "--fingerprint")
    assert alice.session()["public_key"] == third_key
    wrong = alice.run("mist", "login", url, "--user", "alice", "--fingerprint", fingerprint(third_key), check=False)
    one_line_error(wrong, f"signs with key {fingerprint(fourth_key)}", "nothing was saved")
    assert alice.session()["public_key"] == third_key
    right = alice.run("mist", "login", url, "--user", "alice", "--fingerprint", rotation["new_fingerprint"].upper().replace("-", " "))
    assert f"tracker key {fingerprint(fourth_key)} (as expected)" in right.stderr
    alice.json("mist", "update", GAME)
    assert_same_tree(builds["1.2"], tmp_path / "alice-game")

    # The key file replaced by hand: no hand-over leads to it, so Bob (pinned to C) is refused, at a manifest
    # signed by the new key and at his next refresh alike.
    stranger = Signer.generate()
    server[0] = restart(server[0], lambda data: stranger.save(data / "signing.key"))
    admin.run("mistpipe", "login", url, "--user", "admin")
    admin.json("mistpipe", "push", GAME, str(builds["1.0"]), "--version", "2.0")  # signed by the stranger key
    one_line_error(bob.run("mist", "update", GAME, check=False), "signing key changed since login", "signature", "may not be your tracker")
    expire_access_token(bob, "mist")
    one_line_error(bob.run("mist", "ls", check=False), "signing key changed since login", fingerprint(stranger.public_key))
    assert bob.session()["public_key"] == third_key


def test_a_seeder_and_a_daemon_pinned_to_the_old_key_follow_it(tmp_path: Path) -> None:
    stack = Stack(f"http://127.0.0.1:{free_port()}", free_port(), tmp_path / "data", [])
    stack.start_tracker()
    stack.start_seeder()
    daemon: Friend | None = None
    try:
        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", stack.tracker_url, "--user", "admin")
        admin.run("mistpipe", "new-game", "coop2", "--title", "Co-op 2")
        one = make_tree(tmp_path / "one", seed=95, small_files=20, large=(2 * MB, 1 * MB))
        two = make_tree(tmp_path / "two", seed=96, small_files=20, large=(2 * MB,))
        admin.json("mistpipe", "push", "coop2", str(one), "--version", "1")
        early, sharer = new_friend(stack, admin, tmp_path), new_friend(stack, admin, tmp_path)
        for f in (early, sharer):
            f.json("install", "coop2", "--dir", str(tmp_path / f"{f.name}-game"))
        old_key = early.person.session()["public_key"]

        stack.stop_tracker()
        rotation = rotate(stack.data)
        stack.start_tracker()  # the seeder keeps running with the old key

        # The seeder checks the admin's upload ticket, signed by the new key: it follows the hand-over.
        admin.json("mistpipe", "push", "coop2", str(two), "--version", "2")
        moved = early.person.run("mist", "update", "coop2", "--json", env=LOOPBACK)
        assert_same_tree(two, tmp_path / f"{early.name}-game")
        assert ROTATED.format(rotation["new_fingerprint"]) in moved.stderr

        # A daemon started on the old key serves a friend who logged in after the rotation (tickets of the new key).
        assert sharer.person.session()["public_key"] == old_key
        sharer.start_daemon()
        daemon = sharer
        newcomer = new_friend(stack, admin, tmp_path)
        assert newcomer.person.session()["public_key"] == rotation["new_key"]
        with stack.seeder_down():
            outcome = newcomer.json("install", "coop2", "--version", "1", "--dir", str(tmp_path / "newcomer-game"))
        assert_same_tree(one, tmp_path / "newcomer-game")
        assert outcome["bytes_from_peers"] == outcome["bytes_downloaded"] > 0
        assert sharer.person.session()["public_key"] == rotation["new_key"]  # re-pinned and saved by the daemon
        assert sharer.daemon is not None
        sharer.daemon.terminate()
        said = sharer.daemon.communicate(timeout=15)[1]
        assert said.count(ROTATED.format(rotation["new_fingerprint"])) == 1, said
    finally:
        if daemon is not None and daemon.daemon is not None and daemon.daemon.poll() is None:
            daemon.daemon.terminate()
            daemon.daemon.wait(timeout=15)
        for process in [*stack.processes, *([stack.seeder] if stack.seeder else [])]:
            process.terminate()
            process.wait(timeout=10)
