"""Peer wire state machines over a real aiortc data channel on loopback (no STUN, no tracker: SDP passed by hand)."""

from __future__ import annotations

import asyncio
import hashlib
import random

import pytest

from client import peerlink, peerwire as pw
from shared import tickets
from shared.signing import Signer
from tests.client.loopback_ice import loopback_ice  # noqa: F401 - a fixture

SIGNER = Signer.generate()
BUILD = "cc" * 32
CHUNKS = {hashlib.sha256(d).hexdigest(): d for d in (random.Random(i).randbytes(200_000 + i) for i in range(8))}


async def linked() -> tuple[peerlink.PeerLink, peerlink.PeerLink]:
    offering, offer_sdp = await peerlink.offer()
    ready, answer_sdp = await peerlink.answer(offer_sdp)
    downloader = await offering.complete(answer_sdp)
    uploader = await ready.link(15)
    return downloader, uploader


async def serve(link: peerlink.PeerLink, uploader: pw.Uploader, tamper: bool = False) -> None:
    """The uploading friend's loop: answer each message, then send what was accepted."""
    while True:
        try:
            message = await link.receive()
        except peerlink.PeerGone:
            return
        for reply in uploader.handle(message):
            await link.send(reply)
        while (job := uploader.next_to_serve()) is not None:
            data = CHUNKS[job.sha256]
            if tamper:
                data = data[:-1] + bytes([data[-1] ^ 1])
            for piece in pw.fragments(job.request_id, job.sha256, data):
                await link.send(piece)


def uploader() -> pw.Uploader:
    def authorize(token: str) -> str:
        return tickets.decode(token, SIGNER.public_key, 0).build

    return pw.Uploader(authorize, lambda build: frozenset(CHUNKS) if build == BUILD else frozenset(), CHUNKS.__contains__, 4)


async def download(link: peerlink.PeerLink, wanted: list[str]) -> list[pw.Event]:
    down = pw.Downloader({h: len(d) for h, d in CHUNKS.items()})
    ticket = tickets.Ticket("friend", tickets.READ, BUILD, 2**40).encode(SIGNER)
    await link.send(pw.Hello(ticket))
    while not down.window:
        down.handle(await link.receive())
    queue = list(wanted)
    events: list[pw.Event] = []
    while len(events) < len(wanted):
        while queue and down.free:
            await link.send(down.request(queue.pop(0)))
        events += down.handle(await link.receive())
    return events


async def test_chunks_cross_a_real_data_channel_in_fragments_and_verify(loopback_ice) -> None:
    down_link, up_link = await linked()
    server = asyncio.create_task(serve(up_link, uploader()))
    try:
        events = await asyncio.wait_for(download(down_link, list(CHUNKS)), 60)
        assert events == [pw.Received(h, d, len(d)) for h, d in CHUNKS.items()]
        assert down_link.received_bytes > sum(len(d) for d in CHUNKS.values())
    finally:
        await down_link.close()
        await asyncio.wait_for(server, 15)


async def test_a_peer_sending_bad_bytes_is_caught(loopback_ice) -> None:
    down_link, up_link = await linked()
    server = asyncio.create_task(serve(up_link, uploader(), tamper=True))
    try:
        first = next(iter(CHUNKS))
        events = await asyncio.wait_for(download(down_link, [first]), 60)
        assert events == [pw.Corrupt(first)]
    finally:
        await down_link.close()
        await asyncio.wait_for(server, 15)


async def test_garbage_on_the_channel_closes_the_link(loopback_ice) -> None:
    down_link, up_link = await linked()
    up_link._channel.send(b"\x63garbage")  # what a broken or hostile friend might send
    with pytest.raises(pw.PeerProtocolError, match="unknown message type"):
        await asyncio.wait_for(down_link.receive(), 15)
    with pytest.raises(peerlink.PeerGone):
        await asyncio.wait_for(up_link.receive(), 15)
    with pytest.raises(peerlink.PeerGone):
        await down_link.send(pw.Welcome(1))
