"""Sending stored objects from the page cache to a client's socket with os.sendfile, not through Python.

A seeder answer is mostly file bytes. Read into Python and joined, each byte
was copied three times on its way out, and 200 clients' 4 MiB answers sat in
memory at once. Here the kernel moves them. asyncio's `loop.sendfile` does the
same per file but spends about 0.3 ms of bookkeeping on each (and uvloop has
none), so the bytes go straight to the socket while the transport has nothing
queued; when the socket is full, one piece goes through the transport, which
waits for room, and sendfile resumes once it has flushed. Bytes never leave by
both ways at once, so they stay in order. The files come open from
seeder/open_objects.py, which keeps recent ones open.

A record header goes out with MSG_MORE, so it leaves in one segment with the
object's first bytes. The answer used to be corked whole (TCP_CORK) for the
same end; on loopback under 200 clients that cost the seeder 0.63-0.65 CPU s
per GB against 0.39-0.46 with MSG_MORE, and one process served a quarter less
(bench/seeder_load.py --before, docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from aiohttp import web

from seeder.open_objects import OpenFile, OpenObjects
from shared.errors import ChunkMissing

PIECE = 64 * 1024  # what goes through the transport when the socket is full
# What one answer sends (in whole objects) before the others get their turn, as nginx's sendfile_max_chunk
# (2 MiB). Without it, a connection whose socket buffer had grown to megabytes took a whole pack at once while
# one with a small buffer waited for its turn, again and again, for seconds (30 s timeouts with 200 clients).
# 256 KiB turns cost a trip through the event loop every three objects of Mist's sizes (bench/seeder_load.py).
TURN = 1024 * 1024
MORE = getattr(socket, "MSG_MORE", 0)  # Linux; elsewhere a header leaves in a segment of its own


class Part(NamedTuple):
    """Bytes to send (a pack record header, may be empty), then the stored object `name` if any, of `size` bytes.

    A tuple: a pack answer makes one per object, and this is the seeder's hot path.
    """

    prefix: bytes
    name: str | None = None
    size: int = 0


def length(parts: Sequence[Part]) -> int:
    return sum(len(p.prefix) + (p.size if p.name is not None else 0) for p in parts)


class ObjectChanged(ConnectionResetError):
    """A stored object vanished or changed size after the answer's length was promised: the connection is cut."""


async def send(request: web.Request, response: web.StreamResponse, parts: Sequence[Part], objects: OpenObjects) -> None:
    """Prepare `response` (its content length set to `length(parts)`) and send the parts on it, their objects from `objects`.

    Raises ConnectionError when the client goes away or an object changed under us; the
    connection is then closed, so the client never takes a short answer for a whole one.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    if request.method == "HEAD":  # the head alone: bytes written past aiohttp would be taken for the next answer
        await response.prepare(request)
        return
    limits = transport.get_write_buffer_limits()
    cursor = _Cursor(parts, objects)
    with _borrowed(transport.get_extra_info("socket")) as direct:
        try:
            writer = await response.prepare(request)
            assert writer is not None
            transport.set_write_buffer_limits(high=0, low=0)  # drain() then waits for an empty buffer
            while True:
                blocked = True
                if direct is not None and not transport.is_closing() and transport.get_write_buffer_size() == 0:
                    blocked = cursor.push(direct, TURN)  # with no trip through the event loop
                if cursor.done:
                    break
                if blocked:  # the socket is full: the transport waits for room
                    await writer.write(cursor.piece())
                    await writer.drain()  # until it has flushed, and the socket is ours again
                else:
                    await asyncio.sleep(0)  # the other answers' turn
        except OSError:
            transport.abort()
            raise
        finally:
            cursor.close()
            if not transport.is_closing():
                transport.set_write_buffer_limits(high=limits[1], low=limits[0])


@contextmanager
def _borrowed(sock: socket.socket | None) -> Iterator[socket.socket | None]:
    """A socket object of ours on the transport's descriptor (uvloop's own cannot send with flags), never
    blocking, and let go of (not closed: the transport closes it) however the answer ends. None when the
    connection is gone already: then only the transport's writes are tried, and they fail."""
    fd = sock.fileno() if sock is not None else -1
    if sock is None or fd < 0:
        yield None
        return
    try:
        borrowed = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    except OSError:  # closed under us
        raise ConnectionResetError("the client went away") from None
    try:
        borrowed.setblocking(False)  # not the process's default timeout: a full socket must not stall the loop
        yield borrowed
    finally:
        borrowed.detach()


class _Cursor:
    """How far the parts have been sent: part `index`, `offset` bytes into its prefix and then its file."""

    def __init__(self, parts: Sequence[Part], objects: OpenObjects) -> None:
        self.parts = parts
        self.objects = objects
        self.index = 0
        self.offset = 0
        self.source: OpenFile | None = None  # the open file of the current part

    @property
    def done(self) -> bool:
        return self.index >= len(self.parts)

    def push(self, sock: socket.socket, budget: int) -> bool:
        """Write straight to the socket, whole objects, until `budget` bytes are sent, everything is, or it would block.

        True if it would block.
        """
        parts, send, sendfile, fd = self.parts, sock.send, os.sendfile, sock.fileno()
        spent = -self.offset  # what was sent of the current part before this call is not counted again
        try:
            while self.index < len(parts):
                prefix, name, size = parts[self.index]
                head = len(prefix)
                while self.offset < head:  # held back for the object's bytes when one follows
                    self.offset += send(prefix[self.offset :], MORE if name is not None else 0)
                if name is not None:
                    source = self._open(parts[self.index])
                    end = head + size
                    while self.offset < end:
                        sent = sendfile(fd, source, self.offset - head, end - self.offset)
                        if not sent:
                            raise ObjectChanged(f"{name[:12]} shrank in the store while it was being sent")
                        self.offset += sent
                spent += self.offset
                self._next()
                if spent >= budget:
                    return False
        except BlockingIOError:
            return True
        return False

    def piece(self) -> bytes:
        """The next bytes to send through the transport: the rest of a prefix, or up to PIECE of the file."""
        part = self.parts[self.index]
        head = len(part.prefix)
        if self.offset < head:
            data = part.prefix[self.offset :]
        else:
            assert part.name is not None
            data = os.pread(self._open(part), min(PIECE, head + part.size - self.offset), self.offset - head)
            if not data:
                raise ObjectChanged(f"{part.name[:12]} shrank in the store while it was being sent")
        self.offset += len(data)
        if self.offset >= head + (part.size if part.name is not None else 0):
            self._next()
        return data

    def _open(self, part: Part) -> int:
        if self.source is None:
            assert part.name is not None
            try:
                self.source = self.objects.acquire(part.name, part.size)
            except ChunkMissing:
                raise ObjectChanged(f"{part.name[:12]} left or changed in the store while it was being sent") from None
        return self.source.fd

    def _next(self) -> None:
        self.close()
        self.index += 1
        self.offset = 0

    def close(self) -> None:
        if self.source is not None:
            self.objects.release(self.source)
            self.source = None
