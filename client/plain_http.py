"""HTTP over the standard library, for commands that only read or only hand work to the daemon.

aiohttp alone takes 0.13 s to import, more than `mist ls`, `mist status` or an
install handed to a running daemon need in all. `get_json` answers only the
plain case (a saved token still valid, a 200 with JSON); anything else returns
None and the caller asks again through `client.api`, which refreshes tokens,
follows key hand-overs and words every error. `post_lines` streams the
daemon's answer to `mist install` and `mist update`, over a socket of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from client import http_wire

REFRESH_MARGIN = 60  # as client.api: a token this close to its end is refreshed there, not used here
TIMEOUT = 10.0


def get_json(url: str, token: str, scheme: str = "Bearer", user_agent: str = "mist (Mist)") -> Any | None:
    """GET `url` with the token; the JSON answer, or None when the caller should take the full path."""
    import http.client  # here, not at import: `mist --help` needs none of it

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=TIMEOUT)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(
            "GET", path, headers={"Authorization": f"{scheme} {token}", "User-Agent": user_agent, "Accept": "application/json"}
        )
        response = connection.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError, RecursionError):
        return None
    finally:
        connection.close()


def tracker_get(creds: Any, path: str, tool: str) -> Any | None:
    """GET a tracker path with a saved session (`client.credentials.Credentials`), or None (see `get_json`)."""
    if creds.access_expires - REFRESH_MARGIN < time.time():
        return None
    return get_json(f"{creds.url}{path}", creds.access_token, user_agent=f"{tool} (Mist)")


def post_lines(url: str, token: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """POST JSON to the local daemon and yield each JSON line of its answer as it comes (as `api.local_lines`).

    HTTP/1.1 by hand over a socket: http.client would be a fifth of the command's start (its email
    parser and ssl), and the daemon on loopback answers only in one of three plain shapes (chunked
    lines, a body with a length, or one that ends with the connection)."""
    import socket

    from client.errors import ServerRefused, TrackerUnavailable

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lost = f"lost the mist daemon at {url}; `mist status` shows whether it runs"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Connection": "close"}
    request = http_wire.request("POST", url, headers, json.dumps(body).encode())
    if request is None:
        raise TrackerUnavailable(f"{lost} (its address file holds no usable token: restart it)")
    try:
        sock = socket.create_connection((host, port))  # loopback: no timeout, an install may take hours
    except OSError as exc:
        raise TrackerUnavailable(f"{lost} ({exc})") from exc
    with sock, sock.makefile("rb") as stream:
        try:
            sock.sendall(request)
            _, status, reason, answer_headers = _read_head(stream)
            lines = _body_lines(stream, answer_headers)
            if status >= 400:
                text = b"\n".join(lines)
                try:
                    answer = json.loads(text)
                    message, detail = answer.get("error") or reason, answer.get("detail")
                except (ValueError, AttributeError):
                    message, detail = f"{status} {reason}", None
                raise ServerRefused(status, str(message), detail)
            for line in lines:
                if line.strip():
                    try:
                        item = json.loads(line)
                    except (ValueError, RecursionError) as exc:  # cut mid-line, or not the daemon that answers
                        raise TrackerUnavailable(f"{lost} (a line of its answer is not JSON: {exc})") from exc
                    yield item
        except OSError as exc:  # a ConnectionError of the reading below: cut short, or not HTTP
            raise TrackerUnavailable(f"{lost} ({exc})") from exc


MAX_LINE = 64 * 1024  # a status, header or chunk-size line
MAX_HEADERS = 100


def _line(stream: Any) -> bytes:
    line: bytes = stream.readline(MAX_LINE + 1)
    if not line.endswith(b"\n"):
        raise ConnectionError("the answer was cut short" if len(line) <= MAX_LINE else "an answer line is too long")
    return line


def _read_head(stream: Any) -> http_wire.Head:
    """An HTTP/1.x answer's head, read a line at a time up to the blank line that ends it."""
    lines = [_line(stream).rstrip(b"\r\n")]
    if not http_wire.parse_head(lines[0]).status:
        raise ConnectionError(f"not an HTTP answer ({lines[0][:40]!r})")
    for _ in range(MAX_HEADERS):
        line = _line(stream).rstrip(b"\r\n")
        if not line:
            return http_wire.parse_head(b"\r\n".join(lines))
        lines.append(line)
    raise ConnectionError(f"more than {MAX_HEADERS} headers")


def _body_lines(stream: Any, headers: Mapping[str, str]) -> Iterator[bytes]:
    """The answer's body, a line at a time (a last line without its newline included), as it arrives."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        pieces = _chunks(stream)
    elif "content-length" in headers:
        length = http_wire.content_length(headers)
        if length is None:
            raise ConnectionError(f"a Content-Length that is not a number ({headers['content-length'][:20]!r})")
        pieces = _exactly(stream, length)
    else:
        pieces = iter(lambda: stream.read1(MAX_LINE), b"")  # to the end of the connection
    pending: list[bytes] = []  # the line begun and not ended yet, in the pieces it came in (joined once)
    for piece in pieces:
        *whole, rest = piece.split(b"\n")
        if whole:
            whole[0] = b"".join([*pending, whole[0]])
            pending.clear()
            yield from whole
        if rest:
            pending.append(rest)
    if pending:
        yield b"".join(pending)


def _chunks(stream: Any) -> Iterator[bytes]:
    while True:
        size_text = _line(stream).split(b";")[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ConnectionError(f"a chunk size that is not hexadecimal ({size_text[:20]!r})")
        size = int(size_text, 16)
        if size == 0:
            while _line(stream) not in (b"\r\n", b"\n"):  # trailers, if any
                pass
            return
        yield from _exactly(stream, size)  # in pieces: a size that lies is never allocated at once
        if stream.read(2) != b"\r\n":
            raise ConnectionError("the answer was cut short")


def _exactly(stream: Any, length: int) -> Iterator[bytes]:
    while length > 0:
        data = stream.read1(min(length, MAX_LINE))
        if not data:
            raise ConnectionError("the answer was cut short")
        length -= len(data)
        yield data
