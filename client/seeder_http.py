"""Seeder answers read straight into their buffer (`asyncio.BufferedProtocol`), on kept-alive connections.

Why not aiohttp for these: a fresh install is bound by the GIL, and the event
loop's thread held it most of the time just to move the answers' bytes. For
each socket read aiohttp made a bytes object, fed it to its parser, queued it,
and re-armed a read timer; the caller then copied it once more into the answer.
Here each read lands in the answer's own buffer and the loop only counts it.

Only the plain case comes this way: a 200 with a Content-Length. For any other
answer (an error, a chunked one from a proxy) `post` returns None, and the
caller asks again through aiohttp, which reads any answer and words every
error; after a chunked answer a seeder is asked through aiohttp from then on.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast
from urllib.parse import urlsplit

from client import http_wire
from shared.errors import PackError

HEAD_LIMIT = 64 * 1024  # a status line and a few headers; more is not a seeder
CONNECT_TIMEOUT = 15.0  # as client.api's sock_connect
STALL_TIMEOUT = 120.0  # as client.api's sock_read: not a byte for this long, and the seeder is gone
_Key = tuple[str, str, int]


class Buffers:
    """Answer buffers given back once read, for the next answers: a fresh 4 MiB buffer is zeroed and faulted
    in page by page, which cost the event loop's thread more than reading the answer into it. Buffers are made
    in whole MiB, so one kept serves any answer of its size or less."""

    KEEP = 8  # spares at most: the answers in flight and in the workers at once (16 MiB asked ahead), not a cache
    STEP = 1 << 20

    def __init__(self) -> None:
        self._spare: list[bytearray] = []

    def __repr__(self) -> str:
        return f"Buffers(spare={len(self._spare)})"

    def take(self, length: int) -> memoryview:
        for at, spare in enumerate(self._spare):
            if len(spare) >= length:
                del self._spare[at]
                return memoryview(spare)[:length]
        return memoryview(bytearray(-(-length // self.STEP) * self.STEP))[:length]

    def give_back(self, answer: memoryview) -> None:
        """Keep the answer's buffer for another answer. The caller gives back only an answer it is done with
        (`SeederSource` once its worker returned; a cancelled read never): views sliced from it are not
        tracked. Were one read after, it could not write a wrong byte: chunks are decompressed into other
        memory and hashed there before they are written. A buffer still exported (the view cannot be
        released) is left to the garbage collector."""
        buffer = answer.obj
        try:
            answer.release()
        except BufferError:
            return
        if isinstance(buffer, bytearray) and len(self._spare) < self.KEEP:
            self._spare.append(buffer)

    def clear(self) -> None:
        """Let the spares go (a download ended: the daemon does not keep its peak memory while idle)."""
        self._spare.clear()


class _Exchange(asyncio.BufferedProtocol):
    """One connection: a request written, its answer's head read into a scratch buffer, its body into its own."""

    def __init__(self, buffers: Buffers) -> None:
        self._buffers = buffers
        self.transport: asyncio.Transport | None = None
        self._head = bytearray(HEAD_LIMIT)
        self._head_len = 0
        self._body: memoryview | None = None
        self._view = memoryview(self._head)
        self._filled = 0
        self._most = 0
        self._waiter: asyncio.Future[memoryview | None] | None = None
        self.progress = 0  # bytes received, for the stall watch
        self.reusable = False
        self.lost = False
        self.unframed = False  # the last answer was a 200 but chunked or encoded (a proxy's): aiohttp reads it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass, and has what is used

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._waiter is not None and not self._waiter.done():
            if self.progress == 0:  # on a kept-alive connection: the seeder closed it meanwhile (`post` asks again)
                self._waiter.set_exception(ConnectionResetError(f"the seeder closed the connection ({exc or 'no answer'})"))
            else:
                self._waiter.set_exception(PackError(f"the seeder's answer was cut short after {self.progress} bytes"))

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost says what it cut

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._waiter is None or self._waiter.done():
            return memoryview(self._head)  # bytes nobody asked for (past the answer's end): thrown away
        return self._view[self._filled if self._body is not None else self._head_len :]

    def buffer_updated(self, nbytes: int) -> None:
        self.progress += nbytes
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.reusable = False  # nobody asked: this connection is out of step
            return
        if self._body is None:
            self._head_len += nbytes
            self._read_head(waiter)
        else:
            self._filled += nbytes
            if self._filled == len(self._body):
                waiter.set_result(self._body)

    def _read_head(self, waiter: asyncio.Future[memoryview | None]) -> None:
        end = self._head.find(b"\r\n\r\n", 0, self._head_len)
        if end < 0:
            if self._head_len == HEAD_LIMIT:
                waiter.set_exception(PackError(f"the seeder's answer began with over {HEAD_LIMIT} bytes of headers"))
            return
        version, status, _, headers = http_wire.parse_head(bytes(self._head[:end]))
        length = http_wire.content_length(headers)  # None: not framed by a length (nor is a chunked answer)
        if (
            length is None
            or "transfer-encoding" in headers
            or status != 200
            or headers.get("content-encoding", "identity").lower() != "identity"
        ):
            self.unframed = status == 200
            waiter.set_result(None)
            return
        if length > self._most:
            waiter.set_exception(
                PackError(
                    f"the seeder's answer declares {length} bytes, more than the {self._most} it can honestly take; not read"
                )
            )
            return
        keep = headers.get("connection", "").lower()
        self.reusable = keep != "close" if version == "HTTP/1.1" else keep == "keep-alive"
        self._body = self._view = self._buffers.take(length)
        early = self._head[end + 4 : self._head_len]
        if len(early) > len(self._body):
            waiter.set_exception(PackError("the seeder's answer was longer than it declared"))
            return
        self._view[: len(early)] = early
        self._filled = len(early)
        if self._filled == len(self._body):
            waiter.set_result(self._body)

    async def exchange(self, request: bytes, most: int) -> memoryview | None:
        """Send one request and return its answer's body (the stall watch re-arms once a `STALL_TIMEOUT`)."""
        assert self.transport is not None
        self._head_len, self._body, self._view, self._filled, self._most = 0, None, memoryview(self._head), 0, most
        self.progress, self.reusable, self.unframed = 0, False, False
        waiter: asyncio.Future[memoryview | None] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(request)
        try:
            while True:
                before = self.progress
                done, _ = await asyncio.wait({waiter}, timeout=STALL_TIMEOUT)
                if done:
                    return waiter.result()
                if self.progress == before:
                    raise TimeoutError(f"the seeder sent nothing for {STALL_TIMEOUT:.0f} s")
        finally:
            self._waiter = None
            if not waiter.done():
                waiter.cancel()

    def ready(self) -> bool:
        """Whether an idle kept-alive connection can take another request (not closed, nothing unasked came)."""
        return not self.lost and self.reusable and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class SeederHttp:
    """POSTs to seeders on kept-alive connections, one request at a time on each, answers read in place."""

    def __init__(self, user_agent: str) -> None:
        self._user_agent = user_agent
        self._idle: dict[_Key, list[_Exchange]] = {}
        self._unframed: set[_Key] = set()  # seeders (or proxies) whose 200s came chunked or encoded: aiohttp's
        self._tls: ssl.SSLContext | None = None
        self.buffers = Buffers()

    def __repr__(self) -> str:
        return f"SeederHttp(idle={sum(map(len, self._idle.values()))})"

    def plain(self, url: str) -> bool:
        """Whether this URL's answers come this way (an http or https seeder whose 200s came plain so far)."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and _key(url) not in self._unframed

    async def post(self, url: str, headers: dict[str, str], body: bytes, most: int) -> memoryview | None:
        """The answer's body (`buffers.give_back` it once read); None for anything but a 200 with a length (then
        ask through aiohttp); OSError when the seeder cannot be reached, PackError for an answer too long, cut
        short or malformed."""
        request = http_wire.request("POST", url, {"User-Agent": self._user_agent, **headers}, body)
        if request is None:
            return None  # a value that would end its header line early: aiohttp refuses it, and says why
        key = _key(url)
        idle = self._idle.get(key, [])
        while True:
            connection = idle.pop() if idle else None
            reused = connection is not None and connection.ready()
            if connection is None or not reused:
                if connection is not None:
                    connection.close()
                connection = await self._connect(key)
            try:
                answer = await connection.exchange(request, most)
            except OSError:
                connection.close()
                if reused and connection.lost and connection.progress == 0:
                    continue  # a kept-alive connection the seeder had closed meanwhile: ask on another
                raise
            except BaseException:
                connection.close()
                raise
            if answer is None and connection.unframed:
                self._unframed.add(key)
            if answer is not None and connection.reusable and not connection.lost:
                self._idle.setdefault(key, []).append(connection)
            else:
                connection.close()
            return answer

    async def _connect(self, key: _Key) -> _Exchange:
        scheme, host, port = key
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()  # as aiohttp's default: the system's trusted roots
            tls = self._tls
        loop = asyncio.get_running_loop()
        made = loop.create_connection(lambda: _Exchange(self.buffers), host, port, ssl=tls)
        _, protocol = await asyncio.wait_for(made, CONNECT_TIMEOUT)
        return protocol

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


def _key(url: str) -> _Key:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
