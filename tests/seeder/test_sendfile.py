"""Objects leave by sendfile: whole and in order even when the client reads slowly, never short without a cut."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

import pytest

from shared import compression, pack
from shared.chunkstore import DirectoryChunkStore
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import Signer
from shared.tickets import READ, Ticket
from seeder import sendfile
from seeder.app import SeederContext, make_app
from seeder.open_objects import OpenObjects
from tests.stored import store_file

DATA = random.Random(9).randbytes(6_000_000)  # incompressible: about 6 MB stored, more than a socket buffer


@pytest.fixture
async def seeder(tmp_path, aiohttp_server):
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    signer = Signer.generate()
    build = Manifest("game", "1", DEFAULT_PARAMS, (store_file(store, "big.bin", DATA),))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    server = await aiohttp_server(make_app(SeederContext(store, signer.public_key)))
    ticket = Ticket("friend", READ, build.digest(), 2**40).encode(signer)
    return server, store, build, ticket


def expected_pack(store: DirectoryChunkStore, hashes: list[str], absent: set[str] = frozenset()) -> bytes:
    parts = []
    for h in hashes:
        if h in absent:
            parts.append(pack.encode_header(pack.MISSING, h, 0))
        else:
            parts += [pack.encode_header(pack.CHUNK, h, len(store.get(h))), store.get(h)]
    return b"".join(parts) + pack.end_record()


async def raw_fetch(port: int, ticket: str, hashes: list[str], read_size: int) -> tuple[bytes, bytes]:
    """POST /fetch over a socket with a small receive buffer, read `read_size` bytes at a time."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=read_size * 2)
    body = pack.encode_hashes(hashes)
    writer.write(f"POST /fetch HTTP/1.1\r\nHost: x\r\nAuthorization: Ticket {ticket}\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    received = bytearray()
    while len(received) < length:
        piece = await reader.read(min(read_size, length - len(received)))
        if not piece:
            break
        received += piece
    writer.close()
    return head, bytes(received)


async def test_a_slow_reader_gets_every_byte_in_order(seeder, monkeypatch) -> None:
    server, store, build, ticket = seeder
    pieces = []
    real_piece = sendfile._Cursor.piece
    monkeypatch.setattr(sendfile._Cursor, "piece", lambda self: pieces.append(1) or real_piece(self))
    hashes = [c.sha256 for c in build.files[0].chunks]
    random.Random(1).shuffle(hashes)
    head, body = await raw_fetch(server.port, ticket, hashes, read_size=1000)
    assert head.startswith(b"HTTP/1.1 200")
    assert body == expected_pack(store, hashes)
    assert pieces, "the socket never filled up: the fallback through the transport went untested"


async def test_a_missing_object_is_a_missing_record(seeder) -> None:
    server, store, build, ticket = seeder
    hashes = [c.sha256 for c in build.files[0].chunks[:5]]
    gone = hashes[2]
    expected = expected_pack(store, hashes, {gone})
    store.path(gone).unlink()
    _, body = await raw_fetch(server.port, ticket, hashes, read_size=1 << 20)
    assert body == expected


def put_raw(store: DirectoryChunkStore, name: str, data: bytes) -> Path:
    """An object file as the store keeps it (its bytes need not be a real chunk here)."""
    path = store.path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_an_object_that_changed_after_its_length_was_promised_cuts_the_answer(tmp_path) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = "ab" * 32
    path = put_raw(store, name, b"x" * 1000)
    objects = OpenObjects(store)
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        cursor = sendfile._Cursor([sendfile.Part(b"head", name, 1000)], objects)
        assert cursor.push(a, 1 << 20) is False
        assert cursor.done and b.recv(2000) == b"head" + b"x" * 1000
        path.write_bytes(b"x" * 999)  # shortened in place, under the file kept open
        cursor = sendfile._Cursor([sendfile.Part(b"head", name, 1000)], objects)
        with pytest.raises(sendfile.ObjectChanged, match="shrank"):
            cursor.push(a, 1 << 20)
        cursor.close()
        fresh = OpenObjects(store)  # a process that had not opened it: the size it promised is not the file's
        with pytest.raises(sendfile.ObjectChanged, match="left or changed"):
            sendfile._Cursor([sendfile.Part(b"", name, 1000)], fresh).push(a, 1 << 20)
        path.unlink()
        with pytest.raises(sendfile.ObjectChanged, match="left or changed"):
            sendfile._Cursor([sendfile.Part(b"", name, 999)], OpenObjects(store)).push(a, 1 << 20)


def test_one_answer_yields_after_its_turn(tmp_path) -> None:
    """A fast connection gets about a turn's worth at once (whole objects), so the others are not starved."""
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    data = bytes(range(256)) * 40
    first, second = "a1" * 32, "b2" * 32
    put_raw(store, first, data)
    put_raw(store, second, data)
    objects = OpenObjects(store)
    parts = [sendfile.Part(b"a" * 37, first, 10240), sendfile.Part(b"b" * 37, second, 10240), sendfile.Part(b"end")]
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        cursor = sendfile._Cursor(parts, objects)
        received = bytearray()
        turns = 0
        while not cursor.done:
            assert cursor.push(a, 4096) is False  # never blocked: the socket buffer holds it all
            turns += 1
            received += b.recv(1 << 20)
        cursor.close()
    assert bytes(received) == b"a" * 37 + data + b"b" * 37 + data + b"end"
    assert turns == 3  # each object is more than a turn's worth: one object per turn, never cut


class _FlagsSeen(socket.socket):
    """A real socket that notes the flags each header was sent with."""

    flags: list[int]

    def send(self, data: bytes, flags: int = 0) -> int:  # type: ignore[override]  # the buffer types narrowed
        self.flags.append(flags)
        return super().send(data, flags)


def test_a_header_waits_for_its_object_and_the_last_does_not(tmp_path) -> None:
    """A record header goes with MSG_MORE only when an object's bytes follow it: on one that ends the answer
    (a MISSING record, the END record) the flag would hold the answer's tail back in the kernel."""
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    name = "c3" * 32
    put_raw(store, name, b"y" * 5000)
    parts = [sendfile.Part(b"h1", name, 5000), sendfile.Part(b"missing"), sendfile.Part(b"end")]
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, _FlagsSeen(socket.AF_INET, socket.SOCK_STREAM) as a:
        a.flags = []
        a.connect(listener.getsockname())
        b, _ = listener.accept()
        with b:
            a.setblocking(False)
            cursor = sendfile._Cursor(parts, OpenObjects(store))
            assert cursor.push(a, 1 << 20) is False and cursor.done
            cursor.close()
            b.settimeout(30)
            received = bytearray()
            while len(received) < 2 + 5000 + 7 + 3:
                received += b.recv(1 << 16)
    assert bytes(received) == b"h1" + b"y" * 5000 + b"missing" + b"end"
    assert a.flags == [sendfile.MORE, 0, 0]


def test_the_borrowed_socket_never_blocks_and_is_let_go_however_the_answer_ends() -> None:
    """Our socket object on the transport's descriptor: not blocking even with a process-wide default timeout
    (a full socket would stall every answer), and detached, not closed, when the answer fails (closing it would
    free the descriptor's number for another client's connection)."""
    a, b = socket.socketpair()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        with a, b:
            with pytest.raises(RuntimeError):
                with sendfile._borrowed(a) as borrowed:
                    assert borrowed is not None and borrowed.gettimeout() == 0.0
                    with pytest.raises(BlockingIOError):
                        while True:  # fills the socket: it would block
                            borrowed.send(b"x" * 65536)
                    raise RuntimeError("the answer failed")
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                while b.recv(1 << 20):  # what the full socket held
                    pass
            assert a.fileno() >= 0 and a.send(b"still ours") > 0  # the descriptor is open and the same socket
            b.setblocking(True)
            assert b.recv(100) == b"still ours"
            closed = socket.socket()
            closed.close()
            with sendfile._borrowed(closed) as none:
                assert none is None
    finally:
        socket.setdefaulttimeout(previous)
