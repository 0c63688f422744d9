"""The peer wire protocol: exact bytes, refusal of malformed input, and two state machines over an in-memory link."""

from __future__ import annotations

import hashlib
import random

import pytest

from client import peerwire as pw
from shared import tickets
from shared.errors import LocalProtocolError, RemoteProtocolError, TicketError
from shared.signing import Signer

A = "aa" * 32
B = "bb" * 32


def test_messages_have_fixed_bytes() -> None:
    assert bytes(pw.Hello("t.k")) == b"\x01\x02\x00\x03t.k"
    assert bytes(pw.Welcome(16)) == b"\x02\x02\x00\x10"
    assert bytes(pw.HaveAll(A)) == b"\x03" + b"\xaa" * 32
    assert bytes(pw.Have((A, B))) == b"\x04\x00\x00\x00\x02" + b"\xaa" * 32 + b"\xbb" * 32
    assert bytes(pw.Request(7, A)) == b"\x05\x00\x00\x00\x07" + b"\xaa" * 32
    assert bytes(pw.Piece(7, A, 5, 9, b"data")) == b"\x06\x00\x00\x00\x07" + b"\xaa" * 32 + b"\x00\x00\x00\x00\x05\x00\x00\x00\x09data"
    assert bytes(pw.Piece(7, A, 5, 9, b"data", pw.ZSTD))[37] == pw.ZSTD
    assert bytes(pw.Reject(7, A, pw.BUSY)) == b"\x07\x00\x00\x00\x07" + b"\xaa" * 32 + b"\x03"
    assert bytes(pw.Cancel(7, A)) == b"\x08\x00\x00\x00\x07" + b"\xaa" * 32


@pytest.mark.parametrize("message", [
    pw.Hello("abc.def"), pw.Welcome(3), pw.HaveAll(B), pw.Have(()), pw.Have((A, B)), pw.Request(1, A),
    pw.Piece(2, B, 0, 4, b"abcd"), pw.Piece(3, A, 0, 0, b""), pw.Reject(4, A, pw.NOT_HELD), pw.Cancel(5, B),
])
def test_every_message_round_trips(message: pw.Message) -> None:
    assert pw.parse(bytes(message)) == message


@pytest.mark.parametrize("data, says", [
    (b"", "empty"),
    (b"\x63", "unknown message type"),
    (b"\x01\x01\x00\x09short", "ticket length"),
    (b"\x01\x01\x00\x02\xff\xfe", "ASCII"),
    (b"\x02\x01\x00\x00", "window of 0"),
    (b"\x02\x01\x00", "WELCOME message must be 4 bytes"),
    (b"\x03" + b"\xaa" * 31, "HAVE_ALL"),
    (b"\x04\x00\x00\x00\x02" + b"\xaa" * 32, "announces 2 hashes"),
    (b"\x04\xff\xff\xff\xff", "announces"),
    (b"\x05\x00\x00\x00\x01" + b"\xaa" * 32 + b"x", "REQUEST message must be 37"),
    (b"\x06\x00\x00\x00\x01" + b"\xaa" * 32 + b"\x00\x00\x00\x00\x08\x00\x00\x00\x09" + b"xy", "does not fit"),
    (b"\x06\x00\x00\x00\x01" + b"\xaa" * 32 + b"\x00\x00\x00\x00\x00\x7f\xff\xff\xff" + b"x", "does not fit"),
    (b"\x06\x00\x00\x00\x01" + b"\xaa" * 32 + b"\x00\x00\x00\x00\x00\x00\x00\x00\x05", "does not fit"),
    (b"\x06\x00\x00\x00\x01" + b"\xaa" * 32 + b"\x07\x00\x00\x00\x00\x00\x00\x00\x01x", "unknown encoding"),
    (b"\x06\x00\x00", "shorter than its header"),
    (b"\x07\x00\x00\x00\x01" + b"\xaa" * 32 + b"\x09", "unknown reason"),
])
def test_malformed_messages_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(pw.PeerProtocolError, match=says):
        pw.parse(data)


def test_a_fragment_larger_than_any_data_channel_message_is_refused() -> None:
    piece = pw.Piece(1, A, 0, pw.FRAGMENT + 1, b"x" * (pw.FRAGMENT + 1))
    with pytest.raises(pw.PeerProtocolError):
        pw.parse(bytes(piece))


def test_random_bytes_never_crash_the_parser() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        data = bytes([rng.randrange(1, 9)]) + rng.randbytes(rng.randrange(0, 80))
        try:
            pw.parse(data)
        except pw.PeerProtocolError:
            pass


# ---- two state machines over an in-memory link ------------------------------------------------------

CHUNKS = {hashlib.sha256(d).hexdigest(): d for d in (random.Random(i).randbytes(150_000 + i) for i in range(6))}
BUILD = "cc" * 32
SIGNER = Signer.generate()
NOW = 1_000_000.0


def ticket(build: str = BUILD, expires: float = NOW + 3600, signer: Signer = SIGNER) -> str:
    return tickets.Ticket("friend", tickets.READ, build, int(expires)).encode(signer)


def authorize(token: str) -> str:
    granted = tickets.decode(token, SIGNER.public_key, NOW)
    tickets.require(granted, tickets.READ)
    return granted.build


class Link:
    """Carries messages as bytes between a downloader and an uploader, as a data channel would."""

    def __init__(self, held: set[str], in_build: set[str] | None = None, window: int = 4, tamper: bool = False) -> None:
        build = frozenset(CHUNKS) if in_build is None else frozenset(in_build)
        self.up = pw.Uploader(authorize, lambda b: build if b == BUILD else frozenset(), held.__contains__, window)
        self.down = pw.Downloader({h: len(d) for h, d in CHUNKS.items()})
        self.tamper = tamper
        self.wire_bytes = 0

    def to_up(self, message: pw.Message) -> list[pw.Event]:
        replies = self.up.handle(pw.parse(bytes(message)))
        return [e for r in replies for e in self.to_down(r)]

    def to_down(self, message: pw.Message) -> list[pw.Event]:
        data = bytes(message)
        self.wire_bytes += len(data)
        return self.down.handle(pw.parse(data))

    def serve_all(self) -> list[pw.Event]:
        events = []
        while (job := self.up.next_to_serve()) is not None:
            data = CHUNKS[job.sha256]
            if self.tamper:
                data = data[:-1] + bytes([data[-1] ^ 1])
            for piece in pw.fragments(job.request_id, job.sha256, data):
                events += self.to_down(piece)
        return events


def test_a_friend_with_a_ticket_gets_verified_chunks_in_fragments() -> None:
    link = Link(held=set(CHUNKS))
    assert link.to_up(pw.Hello(ticket())) == []
    assert link.down.window == 4 and link.down.free == 4
    wanted = list(CHUNKS)[:4]
    for h in wanted:
        link.to_up(link.down.request(h))
    assert link.down.free == 0
    with pytest.raises(LocalProtocolError, match="window is full"):  # ours to keep: the friend did nothing wrong
        link.down.request(list(CHUNKS)[4])
    events = link.serve_all()
    assert events == [pw.Received(h, CHUNKS[h], len(CHUNKS[h])) for h in wanted]
    assert link.down.free == 4 and link.wire_bytes > sum(len(CHUNKS[h]) for h in wanted)


def test_a_bad_or_foreign_ticket_is_refused_before_anything_is_served() -> None:
    for token in (ticket(signer=Signer.generate()), ticket(expires=NOW - 1), "garbage"):
        link = Link(held=set(CHUNKS))
        with pytest.raises(TicketError):
            link.to_up(pw.Hello(token))
    link = Link(held=set(CHUNKS))  # a client that skips HELLO is refused every chunk
    assert link.up.handle(pw.Request(1, next(iter(CHUNKS)))) == [pw.Reject(1, next(iter(CHUNKS)), pw.UNAUTHORIZED)]
    assert link.up.next_to_serve() is None


def test_requests_outside_the_build_not_held_or_over_the_window_are_rejected() -> None:
    first, second, third, *rest = list(CHUNKS)
    link = Link(held=set(CHUNKS) - {second}, in_build=set(CHUNKS) - {third}, window=2)
    link.to_up(pw.Hello(ticket()))
    link.down.window = 8  # a greedy client ignoring the window it was given
    assert link.to_up(link.down.request(second)) == [pw.Refused(second, pw.NOT_HELD)]
    assert link.to_up(link.down.request(third)) == [pw.Refused(third, pw.NOT_IN_BUILD)]
    assert link.to_up(link.down.request(first)) == []
    assert link.to_up(link.down.request(rest[0])) == []
    assert link.to_up(link.down.request(rest[1])) == [pw.Refused(rest[1], pw.BUSY)]
    assert len(link.up.queue) == 2, "the uploader never holds more than its window"


def test_a_ticket_for_another_build_gets_nothing() -> None:
    link = Link(held=set(CHUNKS))
    link.to_up(pw.Hello(ticket(build="dd" * 32)))
    h = next(iter(CHUNKS))
    assert link.to_up(link.down.request(h)) == [pw.Refused(h, pw.NOT_IN_BUILD)]


def test_corrupt_chunks_are_caught_and_never_delivered() -> None:
    link = Link(held=set(CHUNKS), tamper=True)
    link.to_up(pw.Hello(ticket()))
    h = next(iter(CHUNKS))
    link.to_up(link.down.request(h))
    assert link.serve_all() == [pw.Corrupt(h)]


def test_cancelled_requests_are_not_served_and_late_pieces_are_ignored() -> None:
    first, second = list(CHUNKS)[:2]
    link = Link(held=set(CHUNKS))
    link.to_up(pw.Hello(ticket()))
    link.to_up(link.down.request(first))
    link.to_up(link.down.request(second))
    for cancel in link.down.cancel(first):
        link.to_up(cancel)
    assert [e.sha256 for e in link.serve_all()] == [second]
    late = pw.Piece(1, first, 0, len(CHUNKS[first]), CHUNKS[first][:100])
    assert link.down.handle(late) == []


def test_out_of_order_or_mismatched_pieces_drop_the_peer() -> None:
    first = next(iter(CHUNKS))
    link = Link(held=set(CHUNKS))
    link.to_up(pw.Hello(ticket()))
    request = link.down.request(first)
    with pytest.raises(pw.PeerProtocolError, match="expected 0"):
        link.down.handle(pw.Piece(request.request_id, first, 100, len(CHUNKS[first]), b"x"))
    with pytest.raises(pw.PeerProtocolError, match="not the chunk asked for"):
        link.down.handle(pw.Piece(request.request_id, first, 0, 5, b"x"))
    with pytest.raises(pw.PeerProtocolError, match="before WELCOME"):
        pw.Downloader({}).handle(pw.HaveAll(BUILD))


def test_announcements_tell_the_downloader_what_it_may_ask_for() -> None:
    down = pw.Downloader({A: 1, B: 1})
    down.handle(pw.Welcome(2))
    assert not down.may_have(A)
    down.handle(pw.Have((A,)))
    assert down.may_have(A) and not down.may_have(B)
    down.handle(pw.HaveAll(BUILD))
    assert down.may_have(B)


def _downloading(data: bytes) -> tuple[pw.Downloader, pw.Request]:
    sha = hashlib.sha256(data).hexdigest()
    down = pw.Downloader({sha: len(data)})
    down.handle(pw.Welcome(4))
    return down, down.request(sha)


def test_a_compressed_chunk_is_decompressed_and_verified_and_its_link_size_counted() -> None:
    data = b"level geometry " * 4000
    down, request = _downloading(data)
    encoding, payload = pw.encode(data)
    assert encoding == pw.ZSTD and len(payload) < len(data) // 10
    events = [e for p in pw.fragments(request.request_id, request.sha256, payload, encoding) for e in down.handle(pw.parse(bytes(p)))]
    assert events == [pw.Received(request.sha256, data, len(payload))]
    assert pw.encode(random.Random(1).randbytes(5000))[0] == pw.RAW  # incompressible: sent as it is


@pytest.mark.parametrize("payload", [
    b"not zstd at all",
    pw.encode(b"a different chunk " * 100)[1],  # valid zstd of the wrong bytes
    pw.encode(b"x" * 200_000)[1],  # a bomb: more than the manifest's size for the chunk
])
def test_a_compressed_piece_that_is_not_the_chunk_is_corrupt(payload: bytes) -> None:
    data = b"the real chunk " * 100
    down, request = _downloading(data)
    events = [e for p in pw.fragments(request.request_id, request.sha256, payload, pw.ZSTD) for e in down.handle(p)]
    assert events == [pw.Corrupt(request.sha256)]


# ---- whose breach: the friend's drops the friend, ours is a bug on this side --------------------------------


@pytest.mark.parametrize("data", [b"", b"\x63", b"\x02\x01\x00\x00", b"\x04\xff\xff\xff\xff"])
def test_what_a_friend_sends_against_the_protocol_is_the_friends_breach(data: bytes) -> None:
    with pytest.raises(pw.PeerProtocolError) as raised:
        pw.parse(data)
    assert isinstance(raised.value, RemoteProtocolError) and not isinstance(raised.value, LocalProtocolError)


def test_messages_out_of_turn_from_either_side_are_that_sides_breach() -> None:
    uploader = pw.Uploader(authorize=lambda t: BUILD, build_chunks=lambda b: frozenset(CHUNKS), holds=lambda h: True)
    uploader.handle(pw.Hello("t"))
    for wrong in (pw.Hello("t"), pw.Welcome(4), pw.Piece(1, A, 0, 0, b"")):
        with pytest.raises(pw.PeerProtocolError):
            uploader.handle(wrong)
    downloader = pw.Downloader(dict.fromkeys(CHUNKS, 1))
    downloader.handle(pw.Welcome(2))
    for wrong in (pw.Welcome(2), pw.Request(1, A), pw.Hello("t")):
        with pytest.raises(pw.PeerProtocolError):
            downloader.handle(wrong)


def test_what_we_would_send_against_the_protocol_is_our_breach_and_changes_nothing() -> None:
    downloader = pw.Downloader({A: 10})
    downloader.handle(pw.Welcome(1))
    with pytest.raises(LocalProtocolError, match="not part of this download"):
        downloader.request(B)
    assert downloader.pending == {} and downloader.free == 1  # the refused request was never counted as sent
    downloader.request(A)
    with pytest.raises(LocalProtocolError, match="window is full"):
        downloader.request(A)
    assert len(downloader.pending) == 1
    with pytest.raises(LocalProtocolError, match="send several"):
        bytes(pw.Have(tuple(f"{i:064x}" for i in range(pw.MAX_HAVE + 1))))
    with pytest.raises(LocalProtocolError, match="ASCII ticket"):
        bytes(pw.Hello("tïcket"))
    with pytest.raises(LocalProtocolError, match="ASCII ticket"):
        bytes(pw.Hello("t" * (pw.MAX_TICKET + 1)))
    assert not issubclass(LocalProtocolError, pw.PeerProtocolError)  # so no handler of the friend's breach takes it
