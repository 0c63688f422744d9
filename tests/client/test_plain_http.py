"""`post_lines`, the hand-over of `mist install` to the daemon, speaks HTTP/1.1 over a socket of its own (no
http.client to import). Against real servers on loopback: aiohttp's, as the daemon is, for the shapes it
answers in (lines streamed in chunks, a refusal with a length), and a raw one for bodies without chunks and
for answers cut short or not the daemon's at all: each must say the daemon was lost, never hang, pass, or
raise anything else."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from client.errors import ServerRefused, TrackerUnavailable
from client.plain_http import post_lines

LINES = [{"say": "fetching"}, {"bar": 1, "description": "Assembling", "total": 10}, {"result": {"n": "é" * 3000}}]


async def lines_of(url: str, token: str = "tok", body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return await asyncio.to_thread(lambda: list(post_lines(url, token, body or {"op": "install"})))


@pytest.fixture
async def daemon(aiohttp_server):
    """/run streams LINES in pieces that split lines and characters; /refuse answers 400 as the daemon words
    it; /cut streams half a line and drops the connection."""
    seen: list[tuple[str, str, Any]] = []

    async def run(request: web.Request) -> web.StreamResponse:
        seen.append((request.headers["Authorization"], request.headers["Host"], await request.json()))
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        data = b"".join(json.dumps(line).encode() + b"\n" for line in LINES)
        for i in range(0, len(data), 7):  # every line, and the two-byte characters, split across chunks
            await response.write(data[i : i + 7])
        return response

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "g is already installed in /x", "detail": "update it there"}, status=400)

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"say": "fetch')
        assert request.transport is not None
        request.transport.close()  # as a daemon that dies mid-answer
        return response

    app = web.Application()
    app.add_routes([web.post("/run", run), web.post("/refuse", refuse), web.post("/cut", cut)])
    server = await aiohttp_server(app)
    server.seen = seen
    return server


async def test_the_daemons_lines_come_whole_and_in_order_however_the_chunks_split_them(daemon) -> None:
    assert await lines_of(str(daemon.make_url("/run")), "tok", {"op": "install", "game": "g"}) == LINES
    (authorization, host, body), = daemon.seen
    assert authorization == "Bearer tok" and body == {"op": "install", "game": "g"}
    assert host == f"127.0.0.1:{daemon.port}"  # the daemon's guard refuses any other Host


async def test_a_refusal_is_worded_as_the_daemon_said(daemon) -> None:
    with pytest.raises(ServerRefused) as refused:
        await lines_of(str(daemon.make_url("/refuse")))
    assert refused.value.status == 400 and "already installed in /x" in str(refused.value)
    assert refused.value.detail == "update it there"


async def test_an_answer_cut_short_says_the_daemon_was_lost(daemon) -> None:
    with pytest.raises(TrackerUnavailable, match="lost the mist daemon.*cut short"):
        await lines_of(str(daemon.make_url("/cut")))


async def test_no_daemon_listening_says_the_daemon_was_lost() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(TrackerUnavailable, match="lost the mist daemon"):
            await lines_of(f"http://127.0.0.1:{port}/run")


async def test_a_token_that_would_break_the_request_is_never_sent() -> None:
    with pytest.raises(TrackerUnavailable, match="no usable token"):
        await lines_of("http://127.0.0.1:9/run", "tok\r\nX-Evil: 1")


@asynccontextmanager
async def raw_server(answer: Callable[[bytes], bytes]) -> AsyncIterator[str]:
    """A server that reads the request's head and body, writes `answer(request)`, and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(v for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"))
        writer.write(answer(head + await reader.readexactly(length)))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/run"


OK_CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "answer, said",
    [
        (b"", "cut short"),  # accepted, then closed: the daemon died before answering
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"say\": \"x\"}\n", "cut short"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length that is not a number"),
        (OK_CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", "not hexadecimal"),
        (OK_CHUNKED + b"f\r\n{\"say\": \"x\"}\n\r\n", "cut short"),  # no last chunk
        (OK_CHUNKED + b"ff\r\n{\"say\": \"x\"}\n", "cut short"),  # a chunk shorter than it said
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: y\r\n" * 200 + b"\r\n", "more than 100 headers"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"y" * 70_000 + b"\r\n\r\n", "too long"),
    ],
    ids=["closed", "not-http", "short-length", "bad-length", "bad-chunk-size", "no-last-chunk", "short-chunk",
         "endless-headers", "long-line"],
)
async def test_an_answer_that_is_broken_says_the_daemon_was_lost_and_why(answer: bytes, said: str) -> None:
    async with raw_server(lambda request: answer) as url:
        with pytest.raises(TrackerUnavailable, match=f"lost the mist daemon.*{said}"):
            await lines_of(url)


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"say": "one"}\n{"say": "two"}',  # to the connection's end
        b'HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n{"say": "one"}\n{"say": "two"}\n',
    ],
    ids=["ends-with-the-connection", "content-length"],
)
async def test_a_body_without_chunks_is_read_to_its_end(answer: bytes) -> None:
    async with raw_server(lambda request: answer) as url:
        assert await lines_of(url) == [{"say": "one"}, {"say": "two"}]


@pytest.mark.parametrize(
    "answer, said",
    [
        (b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"say": "one"}\n{"say": "fe', "not JSON"),  # cut mid-line
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n<html>it works</html>\n", "not JSON"),  # not the daemon
        (OK_CHUNKED + b"ffffffffffffff\r\n{}", "cut short"),  # a size no memory holds: read as it comes, then short
    ],
    ids=["cut-mid-line", "html", "size-that-lies"],
)
async def test_a_body_that_is_not_the_daemons_lines_says_the_daemon_was_lost(answer: bytes, said: str) -> None:
    async with raw_server(lambda request: answer) as url:
        with pytest.raises(TrackerUnavailable, match=f"lost the mist daemon.*{said}"):
            await lines_of(url)


async def test_trailers_after_the_last_chunk_are_read_past() -> None:
    answer = OK_CHUNKED + b"d\r\n{\"say\": \"x\"}\n\r\n0\r\nX-Trailer: 1\r\n\r\n"
    async with raw_server(lambda request: answer) as url:
        assert await lines_of(url) == [{"say": "x"}]
