"""The download loop, fed typed events directly or driven against a fake seeder and a fake clock (no sockets)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace

from client import friend_source, swarm
from client.errors import TrackerUnavailable
from client.peerlink import PeerGone
from client.peerwire import Downloader, PeerProtocolError, Welcome
from client.signalling import Friend
from client.sources import Arrived, Left, Seeder, Written
from client.swarm import _Download
from shared.errors import LocalProtocolError


class Bar:
    def __init__(self) -> None:
        self.total = 0

    def advance(self, amount: int) -> None:
        self.total += amount


async def test_a_chunk_the_seeder_sends_after_a_friend_already_did_is_not_counted_again(tmp_path: Path) -> None:
    data = {name: bytes([i]) * 1000 for i, name in enumerate("abc")}
    sha = {name: hashlib.sha256(d).hexdigest() for name, d in data.items()}
    target = tmp_path / "file.bin"
    target.write_bytes(b"\0" * 3000)
    targets = {sha[n]: [(target, i * 1000)] for i, n in enumerate("abc")}
    written: list[Path] = []
    bar = Bar()

    async def no_ticket() -> str:
        raise AssertionError("nothing is fetched in this test")

    download = _Download(None, Seeder("http://unused", no_ticket), {h: 1000 for h in sha.values()}, targets,  # type: ignore[arg-type]
                         bar, written.extend, None, "ab" * 32)
    download.sched.add_source("friend", None, "peer")
    download.sched.add_source("seeder", None, "seeder")
    await download.handle(Arrived("friend", sha["a"], data["a"], 1000))
    assert written == [target]
    # The seeder's batch held a and b; a was already there from the friend.
    target.write_bytes(data["a"] + data["b"] + b"\0" * 1000)
    await download.handle(Written("seeder", (sha["a"], sha["b"]), {sha["a"]: 1050, sha["b"]: 1050}, 2100))
    assert written == [target, target]  # one more position (b), not two: c is still missing
    assert bar.total == 2000 and download.tally.written == 2000
    assert not download.sched.done


class LinkThatWaits:
    """A friend's link that says nothing until it is closed (then the reader hears that it is gone)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.sent: list[object] = []

    async def send(self, message: object) -> None:
        self.sent.append(message)

    async def receive(self) -> object:
        await self.closed.wait()
        raise PeerGone("closed")

    async def close(self) -> None:
        self.closed.set()


class OfferingThatLosesTheCancel:
    """Connecting, as Python 3.11's wait_for can behave: a cancel that arrives with the result is dropped."""

    def __init__(self, link: LinkThatWaits, connecting: asyncio.Event) -> None:
        self.link, self.connecting = link, connecting

    async def complete(self, answer: str) -> LinkThatWaits:
        self.connecting.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the channel opened in the same instant: the link is returned, the cancel forgotten
        return self.link

    async def close(self) -> None:
        raise AssertionError("a link was made: it, not the offering, is closed")


async def test_a_download_ends_even_if_a_friend_still_connecting_loses_its_cancel(tmp_path: Path, monkeypatch) -> None:
    link, connecting = LinkThatWaits(), asyncio.Event()

    async def offer(ice: object) -> tuple[OfferingThatLosesTheCancel, str]:
        return OfferingThatLosesTheCancel(link, connecting), "offer sdp"

    async def answer(peer: str, build: str, sdp: str) -> str:
        return "answer sdp"

    async def ticket() -> str:
        return "a ticket"

    monkeypatch.setattr(friend_source.peerlink, "offer", offer)
    data = b"the only chunk" * 100
    sha = hashlib.sha256(data).hexdigest()
    target = tmp_path / "file.bin"
    target.write_bytes(data)
    async def seeder_down(url: str, ticket: str, body: bytes, most: int) -> bytes:
        raise TrackerUnavailable("the seeder does not answer")  # it backs off; the chunk comes below

    signalling = SimpleNamespace(ice=(), seeder_share=1.0, peer_floor=0.0, offer=answer)
    api = SimpleNamespace(seeder=seeder_down, seeder_answer=seeder_down, let_buffers_go=lambda: None)
    download = _Download(api, Seeder("http://unused", ticket), {sha: len(data)}, {sha: [(target, 0)]},  # type: ignore[arg-type]
                         Bar(), [].extend, swarm.Peers(signalling), "ab" * 32)  # type: ignore[arg-type]
    running = asyncio.create_task(download.run([Friend("p1", "pal", ("ab" * 32,), True)]))
    await asyncio.wait_for(connecting.wait(), 5)
    # The seeder's answer completes the download while the friend is still connecting.
    await download.events.put(Written("seeder", (sha,), {sha: len(data)}, len(data)))
    tally = await asyncio.wait_for(running, 5)  # it ends, and takes the friend's late link down with it
    assert link.closed.is_set() and link.sent == [] and tally.peers_used == 0


async def test_only_the_friends_protocol_breach_drops_and_reports_it_ours_is_logged_as_a_bug(tmp_path: Path,
                                                                                            caplog) -> None:
    data = b"a chunk" * 100
    sha = hashlib.sha256(data).hexdigest()
    reports: list[tuple[str, str]] = []

    async def report(peer: str, build: str, reason: str) -> None:
        reports.append((peer, reason))

    signalling = SimpleNamespace(ice=(), seeder_share=1.0, peer_floor=0.0, report=report)
    download = _Download(None, Seeder("http://unused", None), {sha: len(data)}, {sha: [(tmp_path / "f", 0)]},  # type: ignore[arg-type]
                         Bar(), [].extend, swarm.Peers(signalling), "ab" * 32)  # type: ignore[arg-type]
    links = {peer: LinkThatWaits() for peer in ("ours", "theirs")}
    for peer, link in links.items():
        wire = Downloader({sha: len(data)})
        wire.handle(Welcome(1))
        source = friend_source.FriendSource(Friend(peer, f"{peer}-user", (), True), link, wire, download.events,  # type: ignore[arg-type]
                                            lambda work: None)
        download.friends[peer] = source
        download._add(source, None, max_pieces=1)
    async with asyncio.TaskGroup() as group:
        download.group = group
        with caplog.at_level(logging.ERROR, logger="mist.client"):
            await download.friends["ours"].request([sha, "ff" * 32])  # a chunk not in this download: our bug
            left = await download.events.get()
            await download.handle(left)
        assert isinstance(left, Left) and isinstance(left.error, LocalProtocolError) and links["ours"].closed.is_set()
        assert "a bug in this client broke the peer protocol" in caplog.text and links["ours"].sent == []
        await download.handle(Left("theirs", PeerProtocolError("PIECE with unknown encoding 7")))
    assert reports == [("theirs", "broke the peer protocol: PIECE with unknown encoding 7")]  # only theirs
    assert download.sched.dropped == {"theirs": "broke the peer protocol (PIECE with unknown encoding 7)"}
