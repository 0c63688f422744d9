"""The uploader's side of a breach: a friend who breaks the peer protocol while we serve them is cut off and
reported to the tracker, as a downloader reports a friend who sent a corrupt chunk; a friend who just leaves
is not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

from client.peerlink import PeerGone, PeerLink
from client.peerwire import HaveAll, Hello, Message, PeerProtocolError, Welcome
from client.ratelimit import CAP_BURST, TokenBucket
from client.sharing import Library, TrackerKey, Uploads, serve
from client.state import State
from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import Signer
from shared.tickets import READ, Ticket

SIGNER = Signer.generate()
BUILD = "ab" * 32


class Link:
    """A friend's side of a data channel: what it sends (a message, or the error its bytes make), then gone."""

    def __init__(self, *incoming: Message | PeerProtocolError) -> None:
        self.incoming, self.sent, self.closed = list(incoming), cast(list[Message], []), False

    async def receive(self) -> Message:
        if not self.incoming:
            raise PeerGone("the friend left")
        item = self.incoming.pop(0)
        if isinstance(item, PeerProtocolError):
            raise item
        return item

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        self.closed = True


async def session(*after_hello: Message | PeerProtocolError) -> tuple[Link, list[str]]:
    library = Library(cast(State, None))
    library.builds = {BUILD: BuildIndex.of(Manifest("hollow", "1", DEFAULT_PARAMS, ()))}
    link = Link(Hello(Ticket("bob", READ, BUILD, 2**40).encode(SIGNER)), *after_hello)
    reports: list[str] = []

    async def report(reason: str) -> None:
        reports.append(reason)

    tracker = cast(TrackerKey, SimpleNamespace(public_key=SIGNER.public_key))
    uploads = Uploads(TokenBucket(None, CAP_BURST))
    await serve(cast(PeerLink, link), library, tracker, uploads, "s1", "bob", BUILD, "hollow", 16, report=report)
    assert link.closed and uploads.sessions == {}
    return link, reports


async def test_a_friend_breaking_the_protocol_while_served_is_cut_off_and_reported() -> None:
    link, reports = await session(PeerProtocolError("a text message on the data channel"))
    assert link.sent[:2] == [Welcome(16), HaveAll(BUILD)]  # served until then
    assert reports == ["broke the peer protocol: a text message on the data channel"]


async def test_a_friend_who_leaves_is_not_reported() -> None:
    link, reports = await session()
    assert link.sent[:2] == [Welcome(16), HaveAll(BUILD)] and reports == []
