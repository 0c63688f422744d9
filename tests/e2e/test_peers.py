"""Friends seed each other: real `mist daemon`s on loopback, a tracker and a seeder run apart (so the seeder can
be stopped), every download checked byte for byte."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from client import credentials, peerlink, peerwire
from client.ratelimit import CAP_BURST
from client.api import Api
from client.signalling import BACKOFF_MAX, Signalling, SwarmRefused
from shared import manifest
from shared.chunking import DEFAULT_PARAMS, chunk_bytes
from tests.client.loopback_ice import loopback_ice  # noqa: F401 (a fixture)
from tests import backends
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, free_port
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_faults import one_line_error
from tests.e2e.test_observability import scrape
from tests.e2e.test_split_services import start
from tests.waiting import wait_until

# Several clients on one machine: let WebRTC use 127.0.0.1. And hold the seeder back until the friends' links are up
# or have failed, not for 3 s only: on a loaded machine links can take longer, and the seeder alone would carry
# installs these tests expect friends to share.
LOOPBACK = {"MIST_PEER_LOOPBACK": "1", "MIST_PEER_GRACE": "120"}
HERE = Path(__file__).parent


@dataclass
class Stack:
    tracker_url: str
    seeder_port: int
    data: Path
    processes: list[subprocess.Popen]  # the tracker
    seeder: subprocess.Popen | None = None

    def start_tracker(self) -> None:
        # A floor of 0: friends carry their share however slow a loaded test machine makes them (the hold's
        # speed rule has its own tests in tests/client/test_scheduler.py).
        env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, "MIST_SEEDER_SHARE": "0.2", "MIST_PEER_FLOOR": "0",
               **backends.backend_env(self.data)}
        port = self.tracker_url.rsplit(":", 1)[1]
        self.processes = [start([BIN / "mist-tracker", "--data", str(self.data), "--port", port,
                                 "--seeder-url", f"http://127.0.0.1:{self.seeder_port}/seeder"], env)]

    def stop_tracker(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)
        self.processes = []

    def start_seeder(self) -> None:
        self.seeder = start([BIN / "mist-seeder", "--store", str(self.data / "store"), "--port", str(self.seeder_port),
                             "--tracker-url", self.tracker_url])

    @contextmanager
    def seeder_down(self) -> Iterator[None]:
        """The seeder stopped for the length of the block: only friends can serve."""
        self.stop_seeder()
        try:
            yield
        finally:
            self.start_seeder()

    def stop_seeder(self) -> None:
        assert self.seeder is not None
        self.seeder.terminate()
        self.seeder.wait(timeout=10)
        self.seeder = None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("peers") / "data"
    tracker_port, seeder_port = free_port(), free_port()
    s = Stack(f"http://127.0.0.1:{tracker_port}", seeder_port, data, [])
    s.start_tracker()
    s.start_seeder()
    yield s
    for process in [*s.processes, *([s.seeder] if s.seeder else [])]:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def admin(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Person:
    person = Person(tmp_path_factory.mktemp("admin"), ADMIN_PASSWORD)
    person.run("mistpipe", "login", stack.tracker_url, "--user", "admin")
    return person


@dataclass
class Friend:
    person: Person
    name: str
    daemon: subprocess.Popen | None = None

    def json(self, *args: str) -> dict:
        return self.person.json("mist", *args, env=LOOPBACK)

    def local(self, path: str) -> dict:
        """A call to this friend's daemon's local API, as `mist status` makes it."""
        address = json.loads((self.person.home / "daemon.json").read_text())
        request = urllib.request.Request(address["url"] + path, headers={"Authorization": f"Bearer {address['token']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def start_daemon(self, command: list | None = None) -> None:
        env = {**os.environ, "MIST_HOME": str(self.person.home), **LOOPBACK}
        self.daemon = subprocess.Popen(command or [BIN / "mist", "daemon", "--port", "0"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert self.daemon.stderr is not None
        line = self.daemon.stderr.readline()
        assert "local API at http://127.0.0.1:" in line, line
        wait_until(lambda: (status := self.local("/api/status"))["connected"] and status["builds_shared"],
                   lambda: f"the daemon to join the swarm: {self.local('/api/status')}", 20, 0.05)

    def set_upload_cap(self, text: str, value: int | None) -> None:
        """`mist share --upload-cap`, then wait until the running daemon has read it."""
        self.person.run("mist", "share", "--upload-cap", text)
        wait_until(lambda: self.daemon is None or self.local("/api/status")["sharing"]["upload_cap"] == value,
                   "the daemon to pick up the new cap", 20, 0.05)

    def stop_daemon(self, kill: bool = False) -> None:
        if self.daemon is not None:
            self.daemon.kill() if kill else self.daemon.terminate()
            assert self.daemon.wait(timeout=15) == 0 or kill
            self.daemon = None
            assert kill or not (self.person.home / "daemon.json").exists()  # a stopped daemon leaves no address


_count = 0


def new_friend(stack: Stack, admin: Person, home: Path) -> Friend:
    global _count
    _count += 1
    name = f"pal{_count}"
    admin.run("mistpipe", "user", "add", name, env={"MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(home / name, FRIEND_PASSWORD)
    person.run("mist", "login", stack.tracker_url, "--user", name)
    return Friend(person, name)


@pytest.fixture(scope="module")
def game(stack: Stack, admin: Person, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = make_tree(tmp_path_factory.mktemp("tree") / "coop", seed=71, small_files=40, large=(5 * MB, 4 * MB, 3 * MB))
    admin.run("mistpipe", "new-game", "coop", "--title", "Co-op")
    admin.json("mistpipe", "push", "coop", str(tree), "--version", "1")
    return tree


@pytest.fixture(scope="module")
def seeders(stack: Stack, admin: Person, game: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Friend]]:
    """Three friends who installed the game and keep their daemons running."""
    root = tmp_path_factory.mktemp("seeders")
    friends = [new_friend(stack, admin, root) for _ in range(3)]
    for f in friends:
        f.json("install", "coop", "--dir", str(root / f"{f.name}-game"))
        f.start_daemon()
    yield friends
    for f in friends:
        f.stop_daemon()


def test_a_fourth_friend_gets_most_of_the_build_from_three_friends(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    newcomer = new_friend(stack, admin, tmp_path)
    outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    assert_same_tree(game, tmp_path / "game")
    assert outcome["bytes_from_peers"] > 2 * outcome["bytes_from_seeder"], outcome
    assert outcome["bytes_from_seeder"] + outcome["bytes_from_peers"] == outcome["bytes_downloaded"]
    assert outcome["peers_used"] >= 2 and outcome["peers_dropped"] == {}
    served = sum(f.local("/api/status")["bytes_uploaded"] for f in seeders)
    assert served >= outcome["bytes_from_peers"]  # what the friends say they sent covers what arrived


def test_with_the_seeder_stopped_the_install_completes_from_friends(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    newcomer = new_friend(stack, admin, tmp_path)
    before = reported(stack)
    with stack.seeder_down():
        outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    assert_same_tree(game, tmp_path / "game")
    assert outcome["bytes_from_seeder"] == 0 and outcome["bytes_from_peers"] > 0
    # The command's own swarm connection told the tracker: every chunk of the build came from friends.
    chunks = {ref.sha256 for path in game.rglob("*") if path.is_file()
              for ref in chunk_bytes(path.read_bytes(), DEFAULT_PARAMS).chunks}
    assert reported(stack) - before == Tally(1, len(chunks), outcome["bytes_from_peers"], 0)


@dataclass(frozen=True)
class Tally:
    downloads: float
    peer_chunks: float
    peer_bytes: float
    seeder_bytes: float

    def __sub__(self, other: "Tally") -> "Tally":
        return Tally(*(a - b for a, b in zip(vars(self).values(), vars(other).values())))


def reported(stack: Stack) -> Tally:
    """What friends' clients have told the tracker about their downloads, from its /metrics."""
    s = scrape(stack.tracker_url)
    return Tally(s["mist_swarm_tallies_total"], s["mist_swarm_peer_chunks_reported_total"],
                 s["mist_swarm_peer_bytes_reported_total"], s["mist_swarm_seeder_bytes_reported_total"])


def test_installs_through_daemons_tell_the_tracker_where_their_bytes_came_from(
    stack: Stack, admin: Person, seeders: list[Friend], tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "sequel", seed=73, small_files=10, large=(3 * MB, 2 * MB))
    admin.run("mistpipe", "new-game", "sequel", "--title", "Sequel")
    admin.json("mistpipe", "push", "sequel", str(tree), "--version", "1")
    # The first only from the seeder; the next ones from the seeder and, if their links come up in time, the
    # daemons of those before them. The newcomer has three daemons able to carry it, so the seeder holds back
    # (client/scheduler.py, PEER_FLOOR): some of its bytes come from friends however fast the seeder is.
    for friend in [*seeders, new_friend(stack, admin, tmp_path)]:
        before = reported(stack)
        outcome = friend.json("install", "sequel", "--dir", str(tmp_path / f"{friend.name}-sequel"))
        told = reported(stack) - before
        assert told.downloads == 1 and told.peer_bytes == outcome["bytes_from_peers"]
        assert told.seeder_bytes == outcome["bytes_from_seeder"]
        assert (told.peer_chunks > 0) == (told.peer_bytes > 0) and told.peer_chunks <= told.peer_bytes
    assert outcome["peers_used"] >= 1 and outcome["bytes_from_peers"] > 0


@pytest.mark.parametrize("lie, reported_as", [("corrupt", "corrupt copy of chunk"), ("garbage", "broke the peer protocol")])
def test_a_friend_that_corrupts_chunks_or_breaks_the_protocol_is_dropped_reported_and_nothing_bad_is_written(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path, lie: str, reported_as: str
) -> None:
    liar = new_friend(stack, admin, tmp_path)
    liar.json("install", "coop", "--dir", str(tmp_path / "liar-game"))
    liar.start_daemon([sys.executable, str(HERE / "corrupt_daemon.py"), lie])
    newcomer = new_friend(stack, admin, tmp_path)
    try:
        for f in seeders[1:]:
            f.stop_daemon()  # one honest friend and the liar, and no seeder: the liar is sure to be asked
        stack.stop_seeder()
        outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    finally:
        stack.start_seeder()
        liar.stop_daemon()
        for f in seeders[1:]:
            f.start_daemon()
    assert_same_tree(game, tmp_path / "game")
    assert list(outcome["peers_dropped"]) == [liar.name], outcome
    reports = [r for r in admin.json("mistpipe", "peer-reports")["reports"] if r["peer_user"] == liar.name]
    assert reports and all(r["reporter"] == newcomer.name and reported_as in r["reason"] for r in reports), reports


def test_a_friend_that_vanishes_mid_transfer_costs_only_time(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    for f in seeders:
        f.set_upload_cap("2MB", 2_000_000)  # slow enough to catch one in the middle
    newcomer = new_friend(stack, admin, tmp_path)
    stack.stop_seeder()  # everything must come from friends, including what the one who leaves was sending
    env = {**os.environ, "MIST_HOME": str(newcomer.person.home), **LOOPBACK}
    installing = subprocess.Popen([BIN / "mist", "install", "coop", "--dir", str(tmp_path / "game"), "--json"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        leaving = seeders[0]
        def asked() -> bool:
            assert installing.poll() is None, "the install ended before the friend was asked"
            return any(p["bytes"] > 0 for p in leaving.local("/api/status")["peers"])

        wait_until(asked, "the friend to be asked", 60)
        leaving.stop_daemon(kill=True)
        out, err = installing.communicate(timeout=120)
    finally:
        stack.start_seeder()
        if seeders[0].daemon is None:
            seeders[0].start_daemon()
        for f in seeders:
            f.set_upload_cap("unlimited", None)
    assert installing.returncode == 0, err
    assert_same_tree(game, tmp_path / "game")
    assert json.loads(out)["bytes_from_seeder"] == 0


def test_the_upload_cap_holds_within_ten_percent(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    capped = seeders[0]
    capped.set_upload_cap("1MB", 1_000_000)
    for f in seeders[1:]:
        f.stop_daemon()
    stack.stop_seeder()
    newcomer = new_friend(stack, admin, tmp_path)
    env = {**os.environ, "MIST_HOME": str(newcomer.person.home), **LOOPBACK}
    try:
        installing = subprocess.Popen([BIN / "mist", "install", "coop", "--dir", str(tmp_path / "game"), "--json"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []
        while installing.poll() is None:
            samples.append((time.monotonic(), capped.local("/api/status")["bytes_uploaded"]))
            time.sleep(0.02)
        out, err = installing.communicate()
    finally:
        stack.start_seeder()
        capped.set_upload_cap("unlimited", None)
        for f in seeders[1:]:
            f.start_daemon()
    assert installing.returncode == 0, err
    assert_same_tree(game, tmp_path / "game")
    base = samples[0][1]
    window = [(t, b - base) for t, b in samples if 1 * MB <= b - base <= 9 * MB]  # the steady part of the transfer
    (t0, b0), (t1, b1) = window[0], window[-1]
    rate = (b1 - b0) / (t1 - t0)
    assert rate <= 1.1e6, f"{rate:.0f} B/s against a cap of 1 MB/s"
    # Every 2-second stretch stays under the cap (plus the bucket's burst, spread over it), and the best
    # ones reach it: the cap holds without throttling below it. (The whole transfer's rate can fall
    # short of the cap on a machine whose other tests starve the two processes of CPU.)
    over_2s = []
    for i, (ta, ba) in enumerate(window):
        later = next(((tb, bb) for tb, bb in window[i:] if tb - ta >= 2.0), None)
        if later:
            over_2s.append((later[1] - ba) / (later[0] - ta))
    assert over_2s, "the transfer was too short to measure"
    assert max(over_2s) <= 1.1e6 + CAP_BURST / 2, f"{max(over_2s):.0f} B/s over 2 s against a cap of 1 MB/s"
    assert max(over_2s) >= 0.9e6, f"at best {max(over_2s):.0f} B/s over 2 s: the cap throttles below 1 MB/s"


async def test_without_a_grant_a_friend_gets_nothing_from_peers_even_with_the_chunk_hashes(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path, loopback_ice: None
) -> None:
    keeper, outsider = seeders[0], new_friend(stack, admin, tmp_path)
    secret = make_tree(tmp_path / "vault", seed=72, small_files=5, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "vault", "--title", "Vault", "--private")
    admin.json("mistpipe", "push", "vault", str(secret), "--version", "1")
    admin.run("mistpipe", "grant", keeper.name, "vault")
    keeper.json("install", "vault", "--dir", str(tmp_path / "keeper-vault"))  # through its daemon, which now shares it
    async with Api(credentials.load(admin.home, "mistpipe"), lambda c: None) as as_admin:
        signed = await as_admin.manifest("vault", "1")
    vault = manifest.parse(signed.data)
    hashes = list(vault.chunk_sizes())
    assert vault.digest() in keeper.local("/api/status")["builds_shared"]

    one_line_error(outsider.person.run("mist", "install", "vault", "--dir", str(tmp_path / "no"), check=False), "no game")
    async with Api(credentials.load(outsider.person.home, "mist"), lambda c: None) as api:
        signalling = Signalling(api)
        running = asyncio.create_task(signalling.run(forever=False))
        try:
            assert await signalling.wait_connected(10)
            with pytest.raises(SwarmRefused, match="no game 'vault'"):
                await signalling.find("vault", "1")
            holder = next(f for f in await signalling.find("coop", "1") if f.user == keeper.name)
            _, sdp = await peerlink.offer()
            with pytest.raises(SwarmRefused, match="not one you both may read"):
                await signalling.offer(holder.peer, vault.digest(), sdp)  # the tracker relays nothing for it

            # A ticket for a game the outsider may read, and the private game's chunk hashes: refused one by one.
            ticket = (await api.call("POST", "/api/games/coop/builds/1/ticket"))["ticket"]
            offering, sdp = await peerlink.offer()
            link = await offering.complete(await signalling.offer(holder.peer, holder.builds[0], sdp))
            wire = peerwire.Downloader(vault.chunk_sizes())
            await link.send(peerwire.Hello(ticket))
            while not wire.window:
                wire.handle(await link.receive())
            events: list[peerwire.Event] = []
            for h in hashes[: wire.window]:
                await link.send(wire.request(h))
            while len(events) < min(len(hashes), wire.window):
                events += wire.handle(await link.receive())
            await link.close()
        finally:
            running.cancel()
    assert events and all(isinstance(e, peerwire.Refused) and e.reason == peerwire.NOT_IN_BUILD for e in events)


def test_status_shows_the_daemon_and_share_changes_what_friends_see(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    friend = seeders[2]
    status = friend.json("status")
    installed = [g for g in friend.json("ls")["games"] if g["installed"]]  # coop, and others if a test installed more
    assert status["running"] and status["connected"] and len(status["builds_shared"]) == len(installed) >= 1
    text = friend.person.run("mist", "status").stdout
    assert "mist daemon running" in text and "connected to the tracker" in text

    lonely = new_friend(stack, admin, tmp_path)
    assert lonely.json("status") == {"running": False, "sharing": lonely.json("share"), "peers": [], "news": []}
    assert "not running" in lonely.person.run("mist", "status").stdout

    one_line_error(friend.person.run("mist", "share", "--upload-cap", "fast", check=False), "unlimited")
    one_line_error(friend.person.run("mist", "share", "--schedule", "25:00-07:00", check=False), "HH:MM")
    shown = friend.json("share", "--upload-cap", "3MB", "--schedule", "23:00-07:00 up=unlimited")
    assert shown["upload_cap"] == 3_000_000 and shown["schedule"][0]["upload_cap"] is None
    friend.json("share", "off")
    wait_until(lambda: not friend.local("/api/status")["sharing"]["enabled"], "the daemon to pick up `share off`", 20, 0.05)
    try:
        others = seeders[:2]
        for f in others:
            f.stop_daemon()
        outcome = lonely.json("install", "coop", "--dir", str(tmp_path / "game"))
        assert outcome["bytes_from_peers"] == 0 and outcome["peers_used"] == 0  # the only daemon online does not share
    finally:
        friend.json("share", "on", "--upload-cap", "unlimited", "--no-schedule")
        for f in others:
            f.start_daemon()
    assert_same_tree(game, tmp_path / "game")


def test_the_daemon_s_local_api_answers_only_its_own_user_s_commands(seeders: list[Friend]) -> None:
    address = json.loads((seeders[0].person.home / "daemon.json").read_text())
    assert oct((seeders[0].person.home / "daemon.json").stat().st_mode & 0o777) == "0o600"
    for headers, status in (({}, 401), ({"Authorization": "Bearer guess"}, 401),
                            ({"Authorization": f"Bearer {address['token']}", "Origin": "http://evil.example"}, 403)):
        request = urllib.request.Request(address["url"] + "/api/status", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == status


def _assert_capped(outcome: dict, content: int) -> None:
    """A cap is a ceiling: the content cannot have come faster than 2 MB/s after the first 256 KiB."""
    assert outcome["seconds"] >= (content - 256 * 1024) / 2_000_000 * 0.95, outcome["seconds"]


def test_the_download_cap_holds_for_friends_bytes(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    # With the seeder stopped every byte comes from friends, however late their links come up on a loaded machine
    # (with the seeder up, a link slower than the connect grace leaves it all to the seeder: the mix is timing).
    newcomer = new_friend(stack, admin, tmp_path)
    newcomer.json("share", "--download-cap", "2MB")
    with stack.seeder_down():
        outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    assert_same_tree(game, tmp_path / "game")
    assert outcome["bytes_from_peers"] == outcome["bytes_downloaded"] > 0
    _assert_capped(outcome, sum(p.stat().st_size for p in game.rglob("*") if p.is_file()))


def test_the_download_cap_holds_across_the_seeder_and_friends(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    # The seeder's requests and the friends' wait on one token bucket (client/swarm.py `_download_delay`): whatever
    # share each carries, together they stay under the cap.
    newcomer = new_friend(stack, admin, tmp_path)
    newcomer.json("share", "--download-cap", "2MB")
    outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    assert_same_tree(game, tmp_path / "game")
    assert outcome["bytes_from_peers"] + outcome["bytes_from_seeder"] == outcome["bytes_downloaded"] > 0
    _assert_capped(outcome, sum(p.stat().st_size for p in game.rglob("*") if p.is_file()))


def test_daemons_rejoin_the_swarm_after_the_tracker_restarts(
    stack: Stack, admin: Person, game: Path, seeders: list[Friend], tmp_path: Path
) -> None:
    stack.stop_tracker()
    wait_until(lambda: not any(f.local("/api/status")["connected"] for f in seeders),
               "every daemon to notice the tracker left", 20, 0.05)
    assert all(f.local("/api/status")["tracker_error"] for f in seeders)  # and says why
    stack.start_tracker()
    # A daemon retries with a backoff that doubles up to BACKOFF_MAX while the tracker is away (longer on a
    # loaded machine, where the restart takes a while): its next try may come that long after the tracker is back.
    wait_until(lambda: all(f.local("/api/status")["connected"] for f in seeders), "every daemon to reconnect",
               BACKOFF_MAX + 30, 0.05)
    newcomer = new_friend(stack, admin, tmp_path)
    with stack.seeder_down():
        outcome = newcomer.json("install", "coop", "--dir", str(tmp_path / "game"))
    assert_same_tree(game, tmp_path / "game")
    assert outcome["bytes_from_peers"] == outcome["bytes_downloaded"] > 0  # they announced their builds again
