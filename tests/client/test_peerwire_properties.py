"""Properties of the peer wire protocol: each message has one byte form that parses back as itself; anything
else a friend's client sends is refused with a PeerProtocolError, without allocating what it claims; and
the two state machines, fed any sequence of messages, only ever hand on chunks that hash to their names."""

from __future__ import annotations

import hashlib
import random
from contextlib import suppress

import pytest
from hypothesis import event as tally, given, strategies as st

from client import peerwire as pw
from shared.errors import TicketError
from tests.hostile import allocation_peak
from tests.shared.strategies import sha256_hex

pytestmark = pytest.mark.same_on_every_backend  # pure: bytes in, messages and decisions out

request_ids = st.integers(min_value=0, max_value=2**32 - 1)
versions = st.just(pw.VERSION) | st.integers(min_value=0, max_value=255)


@st.composite
def pieces(draw: st.DrawFn, request_id: st.SearchStrategy[int] = request_ids,
           sha: st.SearchStrategy[str] = sha256_hex) -> pw.Piece:
    """A PIECE as the wire allows it: a fragment of at most FRAGMENT bytes inside a chunk of at most MAX_CHUNK."""
    total = draw(st.integers(min_value=0, max_value=300) | st.sampled_from([pw.FRAGMENT, pw.MAX_CHUNK]))
    length = draw(st.integers(min_value=1 if total else 0, max_value=min(total, 300)))
    offset = draw(st.integers(min_value=0, max_value=total - length))
    return pw.Piece(draw(request_id), draw(sha), offset, total, draw(st.binary(min_size=length, max_size=length)),
                    draw(st.sampled_from([pw.RAW, pw.ZSTD])))


messages = st.one_of(
    st.builds(pw.Hello, st.text(st.characters(max_codepoint=127), max_size=300), versions),
    st.builds(pw.Welcome, st.integers(min_value=1, max_value=2**16 - 1), versions),
    st.builds(pw.HaveAll, sha256_hex),
    st.builds(pw.Have, st.lists(sha256_hex, max_size=20).map(tuple)),
    st.builds(pw.Request, request_ids, sha256_hex),
    pieces(),
    st.builds(pw.Reject, request_ids, sha256_hex, st.sampled_from(sorted(pw.REASONS))),
    st.builds(pw.Cancel, request_ids, sha256_hex),
)


@st.composite
def damaged(draw: st.DrawFn, message: pw.Message) -> bytes:
    """A message's bytes with a few bytes changed, then cut or extended."""
    data = bytearray(bytes(message))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=8))


# Bytes with a known type and fields that claim the most: HAVE of 2^32-1 hashes, PIECE totals past MAX_CHUNK.
wire_bytes = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda kind, rest: bytes([kind]) + rest, st.integers(min_value=0, max_value=10), st.binary(max_size=120)),
    messages.flatmap(damaged),
)


@given(messages)
def test_every_message_parses_back_as_itself(message: pw.Message) -> None:
    assert pw.parse(bytes(message)) == message


@given(wire_bytes)
def test_any_bytes_are_one_message_in_its_only_form_or_a_protocol_error(data: bytes) -> None:
    with suppress(pw.PeerProtocolError):
        assert bytes(pw.parse(data)) == data
    assert allocation_peak(lambda: pw.parse(data), (pw.PeerProtocolError,)) < 8 * len(data) + 64 * 1024


# ---- the state machines ------------------------------------------------------------------------------

BUILD = "cc" * 32
CHUNKS = {hashlib.sha256(d).hexdigest(): d for d in (random.Random(i).randbytes(200 + 40_000 * i) for i in range(3))}
CHUNKS.update({hashlib.sha256(d).hexdigest(): d for d in (b"mist " * 30_000, b"x")})  # zstd shrinks the first
SIZES = {sha: len(data) for sha, data in CHUNKS.items()}
NAMES = sorted(CHUNKS)


def _authorize(token: str) -> str:
    if token != "good":
        raise TicketError("ticket is malformed; ask the tracker for a new one")
    return BUILD


def _wire(message: pw.Message) -> pw.Message:
    """A message as the other side receives it: through its bytes."""
    return pw.parse(bytes(message))


@given(st.sets(st.sampled_from(NAMES)), st.sets(st.sampled_from(NAMES)), st.integers(min_value=1, max_value=4),
       st.booleans())
def test_a_friend_with_a_ticket_gets_every_chunk_held_intact_and_a_reason_for_the_others(
    held: set[str], in_build: set[str], window: int, compress: bool
) -> None:
    build = frozenset(in_build)
    up = pw.Uploader(_authorize, lambda b: build if b == BUILD else frozenset(), held.__contains__, window)
    down = pw.Downloader(dict(SIZES))
    events: list[pw.Event] = []
    for reply in up.handle(_wire(pw.Hello("good"))):
        events += down.handle(_wire(reply))
    wanted = list(NAMES)
    while wanted or down.pending:
        while wanted and down.free:
            for reply in up.handle(_wire(down.request(wanted.pop()))):
                events += down.handle(_wire(reply))
        while (job := up.next_to_serve()) is not None:
            encoding, data = pw.encode(CHUNKS[job.sha256]) if compress else (pw.RAW, CHUNKS[job.sha256])
            for piece in pw.fragments(job.request_id, job.sha256, data, encoding):
                events += down.handle(_wire(piece))
    received = {e.sha256: e.data for e in events if isinstance(e, pw.Received)}
    refused = {e.sha256: e.reason for e in events if isinstance(e, pw.Refused)}
    assert received == {sha: CHUNKS[sha] for sha in held & in_build}
    assert refused == {sha: pw.NOT_IN_BUILD if sha not in in_build else pw.NOT_HELD
                       for sha in set(NAMES) - (held & in_build)}


def _whole(sha: str, encoding: int, tamper: bool) -> bytes:
    """A chunk's bytes as one PIECE carries them (zstd or raw), perhaps with one bit flipped."""
    data = pw.encode(CHUNKS[sha])[1] if encoding == pw.ZSTD else CHUNKS[sha]
    return data[:-1] + bytes([data[-1] ^ 1]) if tamper else data


def _whole_piece(request_id: int, sha: str, encoding: int, tamper: bool) -> pw.Piece:
    data = _whole(sha, encoding, tamper)
    return pw.Piece(request_id, sha, 0, len(data), data, encoding)


SMALL = [sha for sha in NAMES if len(pw.encode(CHUNKS[sha])[1]) <= pw.FRAGMENT]  # chunks one PIECE can carry
ids = st.integers(min_value=0, max_value=6)  # a downloader numbers its requests from 1
some_names = st.sampled_from(NAMES) | sha256_hex
# What a hostile friend sends a downloader: wire bytes, or messages aimed at its requests, whole or not.
peer_messages = st.one_of(
    wire_bytes,
    pieces(ids, some_names),
    st.builds(_whole_piece, ids, st.sampled_from(SMALL), st.sampled_from([pw.RAW, pw.ZSTD]), st.booleans()),
    st.builds(pw.Reject, ids, some_names, st.sampled_from(sorted(pw.REASONS))),
    st.builds(pw.HaveAll, sha256_hex), st.builds(pw.Have, st.lists(some_names, max_size=3).map(tuple)),
    st.builds(pw.Welcome, st.integers(min_value=1, max_value=4), versions),
    st.builds(pw.Request, ids, some_names), st.builds(pw.Cancel, ids, some_names),
)


def _answers(request_id: int, sha: str) -> st.SearchStrategy[pw.Message]:
    """What a friend may answer one of our requests with: the chunk whole (raw or zstd, perhaps a bit flipped),
    a fragment of it, a REJECT, or a PIECE for the same request that names another chunk."""
    return st.one_of(
        st.builds(_whole_piece, st.just(request_id), st.just(sha), st.sampled_from([pw.RAW, pw.ZSTD]), st.booleans())
        if sha in SMALL else st.nothing(),
        pieces(st.just(request_id), st.just(sha) | st.sampled_from(NAMES)),
        st.builds(pw.Reject, st.just(request_id), st.just(sha) | st.sampled_from(NAMES),
                  st.sampled_from(sorted(pw.REASONS))),
    )


@given(st.integers(min_value=1, max_value=4), st.data())
def test_a_downloader_fed_anything_hands_on_only_true_chunks_and_holds_what_it_asked_for(window, data) -> None:
    down = pw.Downloader(dict(SIZES))
    down.handle(_wire(pw.Welcome(window)))
    for sha in data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=window, unique=True)):
        down.request(sha)
    for _ in range(data.draw(st.integers(min_value=1, max_value=12))):
        action = data.draw(st.sampled_from(["answer", "request", "answer", "cancel", "answer", "anything"]))
        try:
            if action == "request" and down.free:
                down.request(data.draw(st.sampled_from(NAMES)))
            elif action == "cancel":
                down.cancel(data.draw(st.sampled_from(NAMES)))
            elif action in ("answer", "anything"):
                pending = dict(down.pending)
                if action == "answer" and pending:
                    request_id = data.draw(st.sampled_from(sorted(pending)))
                    incoming: pw.Message | bytes = data.draw(_answers(request_id, pending[request_id]))
                else:
                    incoming = data.draw(peer_messages)
                message = pw.parse(incoming) if isinstance(incoming, bytes) else _wire(incoming)
                for event in down.handle(message):
                    tally(type(event).__name__)
                    assert event.sha256 in pending.values()
                    if isinstance(event, pw.Received):
                        assert event.data == CHUNKS[event.sha256]
        except pw.PeerProtocolError:
            return  # the transport drops the friend
        assert len(down.pending) <= down.window
        assert set(down._partial) <= set(down.pending)
        assert all(len(buffer) <= pw.MAX_CHUNK for buffer in down._partial.values())


@given(st.lists(st.one_of(st.just(pw.Hello("good")), peer_messages), max_size=20),
       st.integers(min_value=1, max_value=4), st.sets(st.sampled_from(NAMES)))
def test_an_uploader_fed_anything_serves_only_chunks_of_the_ticket_s_build_that_it_holds(steps, window, held) -> None:
    in_build = frozenset(NAMES[:3])
    up = pw.Uploader(_authorize, lambda b: in_build if b == BUILD else frozenset(), held.__contains__, window)
    for incoming in steps:
        try:
            up.handle(pw.parse(incoming) if isinstance(incoming, bytes) else _wire(incoming))
        except (pw.PeerProtocolError, TicketError):
            return  # the transport drops the friend
        assert len(up.queue) <= window
        assert set(up.queue.values()) <= in_build & held
