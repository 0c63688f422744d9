"""Sending stored objects from the page cache to a client's socket with os.sendfile, not through Python.

A seeder answer is mostly file bytes. Read into Python and joined, each byte
was copied three times on its way out, and 200 clients' 4 MiB answers sat in
memory at once. Here the kernel moves them. asyncio's `loop.sendfile` does the
same per file but spends about 0.3 ms of bookkeeping on each (and uvloop has
none), so the bytes go straight to the socket while the transport has nothing
queued; when the socket is full, one piece goes through the transport, which
waits for room, and sendfile resumes once it has flushed. Bytes never leave by
both ways at once, so they stay in order.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

PIECE = 64 * 1024  # what goes through the transport when the socket is full


@dataclass(frozen=True)
class Part:
    """Bytes to send (a pack record header, may be empty), then the stored object at `path` if any, of `size` bytes."""

    prefix: bytes
    path: Path | None = None
    size: int = 0


def length(parts: Sequence[Part]) -> int:
    return sum(len(p.prefix) + (p.size if p.path is not None else 0) for p in parts)


class ObjectChanged(ConnectionResetError):
    """A stored object vanished or changed size after the answer's length was promised: the connection is cut."""


async def send(request: web.Request, response: web.StreamResponse, parts: Sequence[Part]) -> None:
    """Prepare `response` (its content length set to `length(parts)`) and send the parts on it.

    Raises ConnectionError when the client goes away or an object changed under us; the
    connection is then closed, so the client never takes a short answer for a whole one.
    """
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    sock = transport.get_extra_info("socket")
    fd = sock.fileno() if sock is not None else -1
    limits = transport.get_write_buffer_limits()
    _cork(sock, True)  # the HTTP head and each record header leave in full segments with the bytes after them
    try:
        writer = await response.prepare(request)
        assert writer is not None
        transport.set_write_buffer_limits(high=0, low=0)  # drain() then waits for an empty buffer
        for part in parts:
            if part.prefix:
                await _send_bytes(transport, writer, fd, part.prefix)
            if part.path is not None:
                await _send_file(transport, writer, fd, part)
    except OSError:
        transport.abort()
        raise
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=limits[1], low=limits[0])
            _cork(sock, False)


def _cork(sock: socket.socket | None, on: bool) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(on))  # type: ignore[union-attr]
    except (AttributeError, OSError):  # not Linux, or not TCP (a Unix socket behind a proxy)
        pass


def _idle(transport: asyncio.Transport, fd: int) -> bool:
    """The socket may be written directly: nothing is queued in the transport ahead of us."""
    return fd >= 0 and not transport.is_closing() and transport.get_write_buffer_size() == 0


async def _send_bytes(transport: asyncio.Transport, writer: AbstractStreamWriter, fd: int, data: bytes) -> None:
    sent = 0
    if _idle(transport, fd):
        try:
            sent = os.write(fd, data)
        except BlockingIOError:
            pass
    if sent < len(data):
        await writer.write(data[sent:])
        await writer.drain()


async def _send_file(transport: asyncio.Transport, writer: AbstractStreamWriter, fd: int, part: Part) -> None:
    assert part.path is not None
    try:
        source = os.open(part.path, os.O_RDONLY)
    except FileNotFoundError:
        raise ObjectChanged(f"{part.path.name[:12]} left the store while it was being sent") from None
    try:
        if os.fstat(source).st_size != part.size:
            raise ObjectChanged(f"{part.path.name[:12]} changed in the store while it was being sent")
        offset = 0
        while offset < part.size:
            if _idle(transport, fd):
                try:
                    sent = os.sendfile(fd, source, offset, part.size - offset)
                except BlockingIOError:
                    sent = 0
                if sent:
                    offset += sent
                    continue
            piece = os.pread(source, min(PIECE, part.size - offset), offset)
            if not piece:
                raise ObjectChanged(f"{part.path.name[:12]} shrank in the store while it was being sent")
            await writer.write(piece)
            await writer.drain()  # until the transport has flushed it: then the socket has room again
            offset += len(piece)
    finally:
        os.close(source)
