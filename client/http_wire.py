"""HTTP/1.1 on the wire, the little of it Mist writes by hand: a request's bytes, and an answer's head read back.

Two readers need it: the seeder's chunk batches, read into their own buffers
(client/seeder_http.py), and the daemon's streamed answer to `mist install`
(client/plain_http.py, which must import nothing heavy). Pure: no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit


class Head(NamedTuple):
    """An answer's status line and headers (names in lower case; a repeated one keeps its last value)."""

    version: str
    status: int  # 0: the first line is not an HTTP/1.x status line
    reason: str
    headers: dict[str, str]


def request(method: str, url: str, headers: Mapping[str, str], body: bytes) -> bytes | None:
    """The request's bytes, with Host and Content-Length; None when a header value is not printable ASCII: a
    line break would end its line early and let the value write headers of its own."""
    if not all(value.isascii() and value.isprintable() for value in headers.values()):
        return None
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def content_length(headers: Mapping[str, str]) -> int | None:
    """The body's length as its Content-Length says (`headers` as `parse_head` gives them); None without one,
    or when it is not a whole number: then the answer is not framed by it."""
    length = headers.get("content-length", "")
    return int(length) if length.isascii() and length.isdigit() else None


def parse_head(block: bytes) -> Head:
    """The head of an answer: its bytes up to, not including, the blank line that ends it."""
    first, *rest = block.decode("latin-1").split("\r\n")
    version, _, status_reason = first.partition(" ")
    code, _, reason = status_reason.partition(" ")
    valid = version.startswith("HTTP/1.") and len(code) == 3 and code.isascii() and code.isdigit()
    headers: dict[str, str] = {}
    for line in rest:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Head(version, int(code) if valid else 0, reason, headers)
