"""A WebRTC data channel to a friend, carrying peer wire messages (aiortc lives only here).

The offering side creates the channel and an SDP offer; the other side
answers; carrying the two SDP texts between them (signalling) is the caller's
job, through the tracker. ICE servers are always given explicitly: with none,
aiortc would ask a public STUN server, which machines without internet must
never try. Sending waits while the channel's buffer is above a high-water
mark, so a slow link never buffers without bound; a message that does not
parse closes the link, since the peer is broken or hostile.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from client.peerwire import Message, PeerProtocolError, parse
from client.errors import ClientError

CHANNEL = "mist"
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
OPEN_TIMEOUT = 15.0


_loopback = False  # offer_loopback() was called: applied when aiortc is first imported

if TYPE_CHECKING:
    from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection


def _aiortc() -> ModuleType:
    """aiortc, imported on the first link: it costs a third of a second, which every `mist` command
    would pay at start though most never open a link."""
    import aiortc

    if _loopback:
        allow_loopback()
    return aiortc


def offer_loopback() -> None:
    """From the first link on, offer 127.0.0.1 too (MIST_PEER_LOOPBACK=1, read at start by client/settings.py)."""
    global _loopback
    _loopback = True


def allow_loopback() -> None:
    """Offer 127.0.0.1 too (aioice leaves it out): for several clients on one machine with no other address."""
    import aioice.ice

    original = aioice.ice.get_host_addresses
    if getattr(original, "mist_loopback", False):
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = original(use_ipv4, use_ipv6)
        return ["127.0.0.1", *found] if use_ipv4 and "127.0.0.1" not in found else found

    with_loopback.mist_loopback = True  # type: ignore[attr-defined]  # a mark on the function: patched once
    aioice.ice.get_host_addresses = with_loopback


class PeerGone(ClientError):
    """The link to the friend closed or never opened: fetch from other sources."""


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server from the configuration (TURN needs the username and credential)."""

    urls: tuple[str, ...]
    username: str = ""
    credential: str = ""


def _configuration(ice: tuple[IceServer, ...]) -> "RTCConfiguration":
    rtc = _aiortc()
    configuration: RTCConfiguration = rtc.RTCConfiguration(
        iceServers=[rtc.RTCIceServer(list(s.urls), username=s.username or None, credential=s.credential or None) for s in ice]
    )
    return configuration


class PeerLink:
    """One open data channel: send and receive parsed messages."""

    def __init__(self, connection: "RTCPeerConnection", channel: "RTCDataChannel") -> None:
        self._connection, self._channel = connection, channel
        self._incoming: asyncio.Queue[Message | BaseException] = asyncio.Queue()
        self._drained = asyncio.Event()
        self.received_bytes = self.sent_bytes = 0
        channel.bufferedAmountLowThreshold = LOW_WATER
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self._drained.set)
        channel.on("close", lambda: self._incoming.put_nowait(PeerGone("the friend closed the link")))

    def __repr__(self) -> str:
        return f"PeerLink(state={self._channel.readyState}, sent={self.sent_bytes}, received={self.received_bytes})"

    def _on_message(self, data: bytes | str) -> None:
        if isinstance(data, str):
            self._incoming.put_nowait(PeerProtocolError("a text message on the data channel"))
            return
        self.received_bytes += len(data)
        try:
            self._incoming.put_nowait(parse(data))
        except PeerProtocolError as exc:
            self._incoming.put_nowait(exc)

    async def send(self, message: Message) -> None:
        if self._channel.readyState != "open":
            raise PeerGone("the link to the friend is closed")
        while self._channel.bufferedAmount > HIGH_WATER:
            self._drained.clear()
            await self._drained.wait()
        data = bytes(message)
        self._channel.send(data)
        self.sent_bytes += len(data)

    async def receive(self) -> Message:
        """The next message; PeerGone once the link closed, PeerProtocolError (and the link closed) for garbage."""
        item = await self._incoming.get()
        if isinstance(item, PeerProtocolError):
            await self.close()
            raise item
        if isinstance(item, BaseException):
            self._incoming.put_nowait(item)  # every later receive hears it too
            raise item
        return item

    async def close(self) -> None:
        await self._connection.close()


class Offering:
    """The side that opens the link: it has sent its offer and waits for the answer."""

    def __init__(self, connection: "RTCPeerConnection", channel: "RTCDataChannel") -> None:
        self._connection, self._channel = connection, channel
        self._open = asyncio.Event()
        channel.on("open", self._open.set)

    async def close(self) -> None:
        """Give up on this link (the friend declined, or never answered)."""
        await self._connection.close()

    async def complete(self, answer_sdp: str) -> PeerLink:
        try:
            await self._connection.setRemoteDescription(_aiortc().RTCSessionDescription(answer_sdp, "answer"))
        except ValueError as exc:
            await self._connection.close()
            raise PeerGone(f"the friend's answer is not valid SDP ({exc})") from None
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                await self._open.wait()
        except TimeoutError:
            await self._connection.close()
            raise PeerGone(f"no connection to the friend within {OPEN_TIMEOUT:.0f} s (NAT?)") from None
        return PeerLink(self._connection, self._channel)


async def offer(ice: tuple[IceServer, ...] = ()) -> tuple[Offering, str]:
    """Start a link: the offer's SDP text goes to the friend through the tracker."""
    connection = _aiortc().RTCPeerConnection(_configuration(ice))
    channel = connection.createDataChannel(CHANNEL, ordered=True)
    await connection.setLocalDescription(await connection.createOffer())
    return Offering(connection, channel), connection.localDescription.sdp


class Answering:
    """The side that accepted an offer: it has sent its answer and waits for the channel to open."""

    def __init__(self, connection: "RTCPeerConnection", ready: asyncio.Future[PeerLink]) -> None:
        self._connection, self._ready = connection, ready

    async def link(self, timeout: float = OPEN_TIMEOUT) -> PeerLink:
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._ready)
        except TimeoutError:
            await self._connection.close()
            raise PeerGone(f"the friend's link did not open within {timeout:.0f} s (NAT?)") from None

    async def close(self) -> None:
        await self._connection.close()


async def answer(offer_sdp: str, ice: tuple[IceServer, ...] = ()) -> tuple[Answering, str]:
    """Accept a friend's offer: the answer's SDP text goes back; `link()` gives the link once it is open."""
    connection = _aiortc().RTCPeerConnection(_configuration(ice))
    ready: asyncio.Future[PeerLink] = asyncio.get_running_loop().create_future()

    def on_channel(channel: "RTCDataChannel") -> None:
        if channel.label != CHANNEL or ready.done():
            return
        link = PeerLink(connection, channel)  # listen at once: the first message may already be on its way

        def opened() -> None:
            if not ready.done():
                ready.set_result(link)

        if channel.readyState == "open":
            opened()
        else:
            channel.on("open", opened)

    connection.on("datachannel", on_channel)
    try:
        await connection.setRemoteDescription(_aiortc().RTCSessionDescription(offer_sdp, "offer"))
        await connection.setLocalDescription(await connection.createAnswer())
    except ValueError as exc:
        await connection.close()
        raise PeerGone(f"the friend's offer is not valid SDP ({exc})") from None
    return Answering(connection, ready), connection.localDescription.sdp
