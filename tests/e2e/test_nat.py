"""Two friends behind NAT routers reach each other: through STUN behind cone NATs (coturn on the public side
tells each its public address), through coturn's TURN relay behind symmetric NATs, and not at all without a
relay, when the seeder serves the whole install without a word about it.

The network is real: namespaces, veth pairs and nftables masquerade (tests/e2e/netns.py); coturn from Debian
runs on the public side. The seeder is stopped before the second friend installs, so every byte must cross
the peer link.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import backends
from tests.e2e import netns
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_split_services import start
from tests.waiting import wait_until

pytestmark = pytest.mark.same_on_every_backend  # what crosses NATs; the tracker's backend is covered by the other end-to-end tests

TURN_USER, TURN_SECRET = "mist", "turn-secret-1"


@pytest.fixture
def network(request: pytest.FixtureRequest) -> Iterator[netns.Network]:
    missing = netns.available()
    assert not missing, missing
    net = netns.Network(f"m{os.getpid() % 10000}")
    net.destroy()
    net.build(symmetric=request.param)
    try:
        yield net
    finally:
        net.destroy()


def _wait_for_log(process: subprocess.Popen, log: Path, words: str, what: str) -> None:
    def said() -> str:
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def started() -> bool:
        assert process.poll() is None, f"{what} exited:\n" + said()
        return log.exists() and words in log.read_text(errors="replace")

    wait_until(started, lambda: f"{what} to start:\n" + said(), 30, 0.05)


def _run(net: netns.Network, where: str, home: Path, *args: str, password: str = FRIEND_PASSWORD) -> str:
    env = {**os.environ, "MIST_HOME": str(home), "MIST_PASSWORD": password}
    env.pop("MIST_PEER_LOOPBACK", None)
    result = subprocess.run([*net.exec(where), *map(str, args)], env=env, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{args} in {where} failed:\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("network, ice, through_peers", [
    ((False, False), [{"urls": [f"stun:{netns.PUBLIC}:3478"]}], True),
    # Symmetric NAT on both sides defeats STUN: only the relay connects them.
    ((True, True), [{"urls": [f"stun:{netns.PUBLIC}:3478"]},
                    {"urls": [f"turn:{netns.PUBLIC}:3478"], "username": TURN_USER, "credential": TURN_SECRET}], True),
    # ... and without a relay no link can open, so the seeder quietly serves it all.
    ((True, True), [{"urls": [f"stun:{netns.PUBLIC}:3478"]}], False),
], indirect=["network"], ids=["cone-nat-stun", "symmetric-nat-turn", "symmetric-nat-falls-back-to-the-seeder"])
def test_friends_behind_nat_transfer_a_game_peer_to_peer(
    network: netns.Network, ice: list, through_peers: bool, tmp_path: Path
) -> None:
    net, public = network, netns.PUBLIC
    processes: list[subprocess.Popen] = []
    try:
        log = tmp_path / "turn.log"
        with open(log, "w") as out:
            turn = subprocess.Popen(
                [*net.exec("pub"), "turnserver", "-n", f"--listening-ip={public}", f"--relay-ip={public}",
                 "--listening-port=3478", "--min-port=49152", "--max-port=49999", "--lt-cred-mech",
                 f"--user={TURN_USER}:{TURN_SECRET}", "--realm=mist.test", "--no-tls", "--no-dtls", "--no-cli",
                 "--log-file=stdout", "--simple-log", "--verbose", f"--pidfile={tmp_path / 'turn.pid'}",
                 "--db", str(tmp_path / "turndb")],
                stdout=out, stderr=subprocess.STDOUT)
        processes.append(turn)
        _wait_for_log(turn, log, "Total General servers", "coturn")

        data = tmp_path / "data"
        env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, "MIST_ICE_SERVERS": json.dumps(ice),
               **backends.backend_env(data)}
        tracker_url, seeder_url = f"http://{public}:8700", f"http://{public}:8701/seeder"
        processes.append(start([*net.exec("pub"), BIN / "mist-tracker", "--data", data, "--host", public,
                                "--port", "8700", "--seeder-url", seeder_url], env))
        seeder = start([*net.exec("pub"), BIN / "mist-seeder", "--store", data / "store", "--host", public,
                        "--port", "8701", "--tracker-url", tracker_url])
        processes.append(seeder)

        admin = tmp_path / "admin"
        _run(net, "pub", admin, BIN / "mistpipe", "login", tracker_url, "--user", "admin", password=ADMIN_PASSWORD)
        tree = make_tree(tmp_path / "tree", seed=81, small_files=10, large=(2 * MB, 1 * MB))
        _run(net, "pub", admin, BIN / "mistpipe", "new-game", "lan", "--title", "LAN Party", password=ADMIN_PASSWORD)
        _run(net, "pub", admin, BIN / "mistpipe", "push", "lan", tree, "--version", "1", password=ADMIN_PASSWORD)
        for name in ("ann", "ben"):
            _run(net, "pub", admin, BIN / "mistpipe", "user", "add", name)

        ann, ben = tmp_path / "ann", tmp_path / "ben"
        _run(net, "hostA", ann, BIN / "mist", "login", tracker_url, "--user", "ann")
        _run(net, "hostA", ann, BIN / "mist", "install", "lan", "--dir", tmp_path / "ann-game")
        daemon = subprocess.Popen([*net.exec("hostA"), BIN / "mist", "daemon"],
                                  env={**os.environ, "MIST_HOME": str(ann)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        processes.append(daemon)
        assert daemon.stderr is not None and "local API at" in daemon.stderr.readline()
        wait_until(lambda: json.loads(_run(net, "hostA", ann, BIN / "mist", "status", "--json"))["connected"],
                   "ann's daemon to reach the tracker", 20, 0.1)  # a look runs a command: not too often

        if through_peers:
            seeder.terminate()
            seeder.wait(timeout=10)
        _run(net, "hostB", ben, BIN / "mist", "login", tracker_url, "--user", "ben")
        outcome = json.loads(_run(net, "hostB", ben, BIN / "mist", "install", "lan", "--dir", tmp_path / "ben-game", "--json"))
        assert_same_tree(tree, tmp_path / "ben-game")
        if through_peers:
            assert outcome["bytes_from_seeder"] == 0 and outcome["bytes_from_peers"] == outcome["bytes_downloaded"] > 0
        else:
            assert outcome["bytes_from_peers"] == 0 and outcome["bytes_from_seeder"] == outcome["bytes_downloaded"] > 0
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
