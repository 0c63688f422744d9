"""The peer wire protocol: the messages two friends' clients exchange over a data channel, with no I/O.

A downloader opens with HELLO carrying its read ticket; the uploader checks it
(offline, with the tracker's key) and answers WELCOME with its window: how
many requests it will hold at once, so a slow peer never buffers without
bound. Then HAVE_ALL / HAVE announce what the uploader holds, REQUEST asks
for a chunk, PIECE carries it in fragments small enough for any data channel
(zstd-compressed when that makes it smaller: the channel costs CPU per byte),
REJECT refuses one request (with a reason), CANCEL withdraws one. Every
message is a type byte and fixed big-endian fields; `parse` refuses anything
malformed with a PeerProtocolError, and the peer that sent it is dropped.

Whose breach it is matters (as in h11): what the friend sent that the protocol
forbids is a PeerProtocolError (a RemoteProtocolError), and only that drops and
reports the friend; what we were about to send that it forbids (a request past
the friend's window, a HAVE longer than a message may be) is a
LocalProtocolError: a bug here, logged as one, and the friend is not blamed.

The two state machines (`Uploader`, `Downloader`) take parsed messages and
return what to send or what happened; the transport carries bytes and reads
chunks from disk. A chunk is served only to a valid ticket whose build
contains it, and every reassembled chunk is hashed before it is handed on.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field

from shared import compression
from shared.errors import ChunkCorrupt, LocalProtocolError, RemoteProtocolError

VERSION = 2
FRAGMENT = 60 * 1024  # below the 64 KiB message size every WebRTC stack accepts
MAX_CHUNK = 1024 * 1024  # no chunk of any manifest is larger (FastCDC max is 256 KiB)
MAX_HAVE = 16_384  # hashes per HAVE message (512 KiB)
MAX_TICKET = 4096
DEFAULT_WINDOW = 16
RAW, ZSTD = 0, 1  # how a PIECE's chunk is encoded
LINK_LEVEL = 1  # zstd level on the link: ~2 ms of CPU per MiB, against the channel's ~40


class PeerProtocolError(RemoteProtocolError):
    """A friend sent something malformed or out of turn: drop it for this download, and report it."""


# Reasons a request is refused.
NOT_HELD, NOT_IN_BUILD, BUSY, UNAUTHORIZED = 1, 2, 3, 4
REASONS = {NOT_HELD: "not held", NOT_IN_BUILD: "not in the ticket's build", BUSY: "busy", UNAUTHORIZED: "no valid ticket"}


@dataclass(frozen=True)
class Hello:
    ticket: str
    version: int = VERSION

    def __bytes__(self) -> bytes:
        raw = self.ticket.encode("ascii", "replace")
        if len(raw) > MAX_TICKET or not self.ticket.isascii():
            raise LocalProtocolError(
                f"a HELLO carries an ASCII ticket of at most {MAX_TICKET} bytes (ours: "
                f"{len(self.ticket)} characters); the tracker's tickets never are otherwise"
            )
        return struct.pack(">BBH", HELLO, self.version, len(raw)) + raw


@dataclass(frozen=True)
class Welcome:
    window: int
    version: int = VERSION

    def __bytes__(self) -> bytes:
        return struct.pack(">BBH", WELCOME, self.version, self.window)


@dataclass(frozen=True)
class HaveAll:
    build: str

    def __bytes__(self) -> bytes:
        return struct.pack(">B32s", HAVE_ALL, bytes.fromhex(self.build))


@dataclass(frozen=True)
class Have:
    hashes: tuple[str, ...]

    def __bytes__(self) -> bytes:
        if len(self.hashes) > MAX_HAVE:
            raise LocalProtocolError(f"a HAVE names at most {MAX_HAVE} hashes (ours: {len(self.hashes)}); send several")
        return struct.pack(">BI", HAVE, len(self.hashes)) + b"".join(bytes.fromhex(h) for h in self.hashes)


@dataclass(frozen=True)
class Request:
    request_id: int
    sha256: str

    def __bytes__(self) -> bytes:
        return struct.pack(">BI32s", REQUEST, self.request_id, bytes.fromhex(self.sha256))


@dataclass(frozen=True)
class Piece:
    """One fragment of an encoded chunk: `total` is the encoded chunk's size, `offset` where this fragment goes."""

    request_id: int
    sha256: str
    offset: int
    total: int
    data: bytes
    encoding: int = RAW

    def __bytes__(self) -> bytes:
        head = struct.pack(
            ">BI32sBII", PIECE, self.request_id, bytes.fromhex(self.sha256), self.encoding, self.offset, self.total
        )
        return head + self.data


@dataclass(frozen=True)
class Reject:
    request_id: int
    sha256: str
    reason: int

    def __bytes__(self) -> bytes:
        return struct.pack(">BI32sB", REJECT, self.request_id, bytes.fromhex(self.sha256), self.reason)


@dataclass(frozen=True)
class Cancel:
    request_id: int
    sha256: str

    def __bytes__(self) -> bytes:
        return struct.pack(">BI32s", CANCEL, self.request_id, bytes.fromhex(self.sha256))


Message = Hello | Welcome | HaveAll | Have | Request | Piece | Reject | Cancel
HELLO, WELCOME, HAVE_ALL, HAVE, REQUEST, PIECE, REJECT, CANCEL = range(1, 9)


def _exact(data: bytes, size: int, name: str) -> None:
    if len(data) != size:
        raise PeerProtocolError(f"{name} message must be {size} bytes, got {len(data)}")


def parse(data: bytes) -> Message:
    """One message from its bytes; PeerProtocolError for anything malformed."""
    if not data:
        raise PeerProtocolError("empty message")
    kind = data[0]
    if kind == HELLO:
        if len(data) < 4:
            raise PeerProtocolError("HELLO is shorter than its header")
        _, version, length = struct.unpack_from(">BBH", data)
        if length > MAX_TICKET or len(data) != 4 + length:
            raise PeerProtocolError("HELLO's ticket length does not match the message")
        try:
            return Hello(data[4:].decode("ascii"), version)
        except UnicodeDecodeError as exc:
            raise PeerProtocolError("HELLO's ticket is not ASCII") from exc
    if kind == WELCOME:
        _exact(data, 4, "WELCOME")
        _, version, window = struct.unpack(">BBH", data)
        if window == 0:
            raise PeerProtocolError("WELCOME with a window of 0")
        return Welcome(window, version)
    if kind == HAVE_ALL:
        _exact(data, 33, "HAVE_ALL")
        return HaveAll(data[1:].hex())
    if kind == HAVE:
        if len(data) < 5:
            raise PeerProtocolError("HAVE is shorter than its header")
        (count,) = struct.unpack_from(">I", data, 1)
        if count > MAX_HAVE or len(data) != 5 + 32 * count:
            raise PeerProtocolError(f"HAVE announces {count} hashes but carries {len(data) - 5} bytes")
        return Have(tuple(data[5 + 32 * i : 37 + 32 * i].hex() for i in range(count)))
    if kind in (REQUEST, CANCEL):
        _exact(data, 37, "REQUEST" if kind == REQUEST else "CANCEL")
        _, request_id, sha = struct.unpack(">BI32s", data)
        return Request(request_id, sha.hex()) if kind == REQUEST else Cancel(request_id, sha.hex())
    if kind == PIECE:
        if len(data) < 46:
            raise PeerProtocolError("PIECE is shorter than its header")
        _, request_id, sha, encoding, offset, total = struct.unpack_from(">BI32sBII", data)
        body = data[46:]
        if encoding not in (RAW, ZSTD):
            raise PeerProtocolError(f"PIECE with unknown encoding {encoding}")
        if total > MAX_CHUNK or len(body) > FRAGMENT or offset + len(body) > total or (not body and total):
            raise PeerProtocolError(f"PIECE fragment {offset}+{len(body)} does not fit a chunk of {total} bytes")
        return Piece(request_id, sha.hex(), offset, total, body, encoding)
    if kind == REJECT:
        _exact(data, 38, "REJECT")
        _, request_id, sha, reason = struct.unpack(">BI32sB", data)
        if reason not in REASONS:
            raise PeerProtocolError(f"REJECT with unknown reason {reason}")
        return Reject(request_id, sha.hex(), reason)
    raise PeerProtocolError(f"unknown message type {kind}")


def encode(data: bytes) -> tuple[int, bytes]:
    """A chunk as it should cross the link: zstd if that is smaller, else as it is (run in a thread)."""
    packed = compression.compress(data, LINK_LEVEL)
    return (ZSTD, packed) if len(packed) < len(data) else (RAW, data)


def fragments(request_id: int, sha256: str, data: bytes, encoding: int = RAW) -> Iterator[Piece]:
    """An encoded chunk as PIECE fragments, in order."""
    if not data:
        yield Piece(request_id, sha256, 0, 0, b"", encoding)
    for offset in range(0, len(data), FRAGMENT):
        yield Piece(request_id, sha256, offset, len(data), data[offset : offset + FRAGMENT], encoding)


# ---- the uploader: serves chunks to a friend who shows a ticket ------------------------------------


@dataclass(frozen=True)
class Serve:
    """Read this chunk and send it as `fragments(request_id, sha256, data)`."""

    request_id: int
    sha256: str


Authorize = Callable[[str], str]  # ticket -> build digest it grants (raises TicketError)
BuildChunks = Callable[[str], Container[str]]  # build digest -> its chunks (by hex name)
Holds = Callable[[str], bool]  # do we have this chunk on disk?


@dataclass
class Uploader:
    """One friend downloading from us. Feed it the friend's messages; send what it returns."""

    authorize: Authorize
    build_chunks: BuildChunks
    holds: Holds
    window: int = DEFAULT_WINDOW
    build: str = ""
    queue: OrderedDict[int, str] = field(default_factory=OrderedDict)

    def __repr__(self) -> str:
        return f"Uploader(build={self.build[:12] or None}, queued={len(self.queue)}, window={self.window})"

    def handle(self, message: Message) -> list[Message]:
        """The replies to one message (WELCOME after a good HELLO, REJECTs); accepted requests join the queue."""
        if isinstance(message, Hello):
            if self.build:
                raise PeerProtocolError("a second HELLO")
            if message.version != VERSION:
                raise PeerProtocolError(f"peer speaks protocol {message.version}, we speak {VERSION}")
            self.build = self.authorize(message.ticket)
            return [Welcome(self.window)]
        if isinstance(message, Request):
            if not self.build:
                return [Reject(message.request_id, message.sha256, UNAUTHORIZED)]
            if message.request_id in self.queue or len(self.queue) >= self.window:
                return [Reject(message.request_id, message.sha256, BUSY)]
            if message.sha256 not in self.build_chunks(self.build):
                return [Reject(message.request_id, message.sha256, NOT_IN_BUILD)]
            if not self.holds(message.sha256):
                return [Reject(message.request_id, message.sha256, NOT_HELD)]
            self.queue[message.request_id] = message.sha256
            return []
        if isinstance(message, Cancel):
            if self.queue.get(message.request_id) == message.sha256:
                del self.queue[message.request_id]
            return []
        raise PeerProtocolError(f"a downloader does not send {type(message).__name__}")

    def next_to_serve(self) -> Serve | None:
        """The oldest accepted request, taken off the queue (the transport sends it when the channel drains)."""
        if not self.queue:
            return None
        request_id, sha = self.queue.popitem(last=False)
        return Serve(request_id, sha)


# ---- the downloader: asks a friend for chunks ------------------------------------------------------


@dataclass(frozen=True)
class Received:
    sha256: str
    data: bytes
    wire: int = 0  # bytes it took on the link (compressed size)


@dataclass(frozen=True)
class Corrupt:
    """The peer sent bytes that do not hash to the chunk: drop the peer, fetch the chunk elsewhere."""

    sha256: str


@dataclass(frozen=True)
class Refused:
    sha256: str
    reason: int


Event = Received | Corrupt | Refused


@dataclass
class Downloader:
    """Our side of one friend: which requests are out, what the friend holds, pieces being reassembled."""

    sizes: dict[str, int]  # every chunk we might ask for, with its size from the signed manifest
    window: int = 0  # 0 until WELCOME
    all_of: str = ""  # a build the friend holds completely
    holds: set[str] = field(default_factory=set)
    pending: dict[int, str] = field(default_factory=dict)
    _partial: dict[int, bytearray] = field(default_factory=dict)
    _next_id: int = 1

    def __repr__(self) -> str:
        return f"Downloader(window={self.window}, outstanding={len(self.pending)}, holds={len(self.holds)})"

    @property
    def free(self) -> int:
        """How many more requests may be sent now (flow control)."""
        return max(0, self.window - len(self.pending))

    def may_have(self, sha256: str) -> bool:
        return bool(self.all_of) or sha256 in self.holds

    def request(self, sha256: str) -> Request:
        if self.free == 0:
            raise LocalProtocolError("the peer's window is full; wait for a piece or a reject before asking more")
        if sha256 not in self.sizes:
            raise LocalProtocolError(f"chunk {sha256[:12]} is not part of this download; only its chunks are asked for")
        request = Request(self._next_id, sha256)
        self._next_id += 1
        self.pending[request.request_id] = sha256
        return request

    def cancel(self, sha256: str) -> list[Cancel]:
        found = [rid for rid, sha in self.pending.items() if sha == sha256]
        for rid in found:
            del self.pending[rid]
            self._partial.pop(rid, None)
        return [Cancel(rid, sha256) for rid in found]

    def handle(self, message: Message) -> list[Event]:
        if isinstance(message, Welcome):
            if self.window:
                raise PeerProtocolError("a second WELCOME")
            if message.version != VERSION:
                raise PeerProtocolError(f"peer speaks protocol {message.version}, we speak {VERSION}")
            self.window = message.window
            return []
        if not self.window:
            raise PeerProtocolError(f"{type(message).__name__} before WELCOME")
        if isinstance(message, HaveAll):
            self.all_of = message.build
            return []
        if isinstance(message, Have):
            self.holds.update(message.hashes)
            return []
        if isinstance(message, Reject):
            if self.pending.get(message.request_id) != message.sha256:
                return []  # a reject for a request we cancelled
            del self.pending[message.request_id]
            self._partial.pop(message.request_id, None)
            return [Refused(message.sha256, message.reason)]
        if isinstance(message, Piece):
            return self._piece(message)
        raise PeerProtocolError(f"an uploader does not send {type(message).__name__}")

    def _piece(self, piece: Piece) -> list[Event]:
        sha = self.pending.get(piece.request_id)
        if sha is None:
            return []  # cancelled while in flight
        if sha != piece.sha256 or (piece.encoding == RAW and piece.total != self.sizes[sha]):
            raise PeerProtocolError(f"PIECE for request {piece.request_id} is not the chunk asked for")
        buffer = self._partial.setdefault(piece.request_id, bytearray())
        if piece.offset != len(buffer):
            raise PeerProtocolError(f"PIECE fragment at {piece.offset}, expected {len(buffer)}")
        buffer += piece.data
        if len(buffer) < piece.total:
            return []
        del self.pending[piece.request_id], self._partial[piece.request_id]
        data = bytes(buffer)
        if piece.encoding == ZSTD:
            try:
                data = compression.decompress(data, self.sizes[sha], sha)  # bounded by the manifest's size
            except ChunkCorrupt:
                return [Corrupt(sha)]
        if hashlib.sha256(data).hexdigest() != sha:
            return [Corrupt(sha)]
        return [Received(sha, data, piece.total)]
