"""The download driver's bookkeeping, fed events directly (no sockets): each file position is reported written once."""

from __future__ import annotations

import hashlib
from pathlib import Path

from client.fetch import Answer, Seeder
from client.peerwire import Received
from client.swarm import _Download


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
    await download._handle(("peer", "friend", Received(sha["a"], data["a"])))
    assert written == [target]
    # The seeder's batch held a and b; a was already there from the friend.
    target.write_bytes(data["a"] + data["b"] + b"\0" * 1000)
    await download._handle(("seeder", Answer((sha["a"], sha["b"]), (), (), (), 2000, (target, target), {sha["a"]: 1050, sha["b"]: 1050}), 2100))
    assert written == [target, target]  # one more position (b), not two: c is still missing
    assert bar.total == 2000 and download.tally.written == 2000
    assert not download.sched.done
