"""Seeder answers read in place: kept-alive connections reused (and a closed one replaced), buffers handed on, and
every answer that is not a plain 200 with a length asked again through aiohttp, which words it, against real
servers on loopback: aiohttp's, and a raw one for what no well-behaved server sends."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from client import seeder_http
from client.api import Api
from client.credentials import Credentials
from client.errors import ServerRefused, TrackerUnavailable
from client.seeder_http import Buffers, SeederHttp
from shared.errors import PackError

BODY = bytes(range(256)) * 4000  # about 1 MB: many socket reads


def api_for(url: str) -> Api:
    return Api(Credentials(url, "friend", "user", "t", 2**40, "r", "k"), lambda c: None)


@pytest.fixture
async def seeder(aiohttp_server):
    """A /fetch that answers BODY (keeping the connection), a /refuse that answers 403 as the seeder words it,
    a /chunked like a proxy's, a /stall that sends its head and half its body, then nothing."""
    connections: list[object] = []

    async def fetch(request: web.Request) -> web.Response:
        assert await request.read() == b"asked"
        assert request.headers["Authorization"] == "Ticket tkt"
        connections.append(request.transport)
        return web.Response(body=BODY, content_type="application/octet-stream")

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "ticket expired", "detail": "ask the tracker for another"}, status=403)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(BODY)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await response.prepare(request)
        await response.write(BODY[: len(BODY) // 2])
        await asyncio.Event().wait()  # until the test ends
        return response

    app = web.Application()
    app.add_routes([web.post("/fetch", fetch), web.post("/refuse", refuse), web.post("/chunked", chunked),
                    web.post("/stall", stall)])
    server = await aiohttp_server(app)
    server.connections = connections
    return server


async def test_answers_come_whole_on_one_kept_alive_connection_into_buffers_handed_on(seeder) -> None:
    async with api_for(str(seeder.make_url(""))) as api:
        first = await api.seeder_answer(str(seeder.make_url("/fetch")), "tkt", b"asked", len(BODY))
        assert isinstance(first, memoryview) and bytes(first) == BODY
        buffer = first.obj
        api.give_back(first)
        second = await api.seeder_answer(str(seeder.make_url("/fetch")), "tkt", b"asked", len(BODY))
        assert bytes(second) == BODY and second.obj is buffer  # the same buffer, filled again
        assert await api.seeder(str(seeder.make_url("/fetch")), "tkt", b"asked", len(BODY)) == BODY  # aiohttp's way
    assert len(seeder.connections) == 3 and seeder.connections[0] is seeder.connections[1] is not seeder.connections[2]


async def test_an_error_is_asked_again_through_aiohttp_and_worded_as_the_seeder_said(seeder) -> None:
    async with api_for(str(seeder.make_url(""))) as api:
        with pytest.raises(ServerRefused, match="ticket expired") as refused:
            await api.seeder_answer(str(seeder.make_url("/refuse")), "tkt", b"asked", len(BODY))
        assert refused.value.status == 403


async def test_a_chunked_answer_is_read_through_aiohttp_and_that_seeder_always_is_from_then_on(seeder) -> None:
    async with api_for(str(seeder.make_url(""))) as api:
        assert bytes(await api.seeder_answer(str(seeder.make_url("/chunked")), "tkt", b"", 2 * len(BODY))) == BODY
        assert not api._seeders.plain(str(seeder.make_url("/fetch")))


async def test_a_seeder_that_stops_sending_is_given_up_on_after_the_stall_timeout(seeder, monkeypatch) -> None:
    monkeypatch.setattr(seeder_http, "STALL_TIMEOUT", 0.2)
    async with api_for(str(seeder.make_url(""))) as api:
        with pytest.raises(TrackerUnavailable, match="sent nothing"):
            await api.seeder_answer(str(seeder.make_url("/stall")), "tkt", b"", len(BODY))


async def test_a_header_value_that_would_end_its_line_is_never_sent_as_is(seeder) -> None:
    client = SeederHttp("test")
    try:
        assert await client.post(str(seeder.make_url("/fetch")), {"Authorization": "Ticket a\r\nX-Evil: 1"}, b"", 10) is None
    finally:
        client.close()
    assert seeder.connections == []


async def test_a_seeder_that_is_not_there_is_unreachable() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with api_for(f"http://127.0.0.1:{port}") as api:
        with pytest.raises(TrackerUnavailable, match="cannot reach the seeder"):
            await api.seeder_answer(f"http://127.0.0.1:{port}/fetch", "tkt", b"", 1000)


# --- a raw server, for what aiohttp's never sends ------------------------------------------------------------------


Answer = Callable[[int, bytes], tuple[bytes, bool]]  # (connection number, request) -> what to send, and close after


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[str]:
    count = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        count += 1
        number = count
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                request = head + await reader.readexactly(length)
                reply, close = answer(number, request)
                writer.write(reply)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/fetch"
    finally:
        server.close()


def ok(body: bytes, *headers: str) -> bytes:
    return "\r\n".join(["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers, "", ""]).encode() + body


async def post(url: str, most: int = 1 << 20) -> bytes:
    client = SeederHttp("test")
    try:
        return bytes(await client.post(url, {}, b"x", most))
    finally:
        client.close()


async def test_a_kept_alive_connection_the_seeder_closed_meanwhile_is_replaced_without_an_error() -> None:
    seen: list[int] = []

    def answer(number: int, request: bytes) -> tuple[bytes, bool]:
        seen.append(number)
        if number == 1 and len(seen) == 2:
            return b"", True  # the first connection's second request: closed unanswered, as a keep-alive timeout does
        return ok(b"answer %d" % len(seen)), False

    async with raw_server(answer) as url:
        client = SeederHttp("test")
        try:
            assert bytes(await client.post(url, {}, b"x", 100)) == b"answer 1"
            assert bytes(await client.post(url, {}, b"x", 100)) == b"answer 3"
        finally:
            client.close()
    assert seen == [1, 1, 2]


async def test_a_seeder_that_stalls_on_a_kept_alive_connection_is_not_asked_again_there_or_elsewhere(monkeypatch) -> None:
    monkeypatch.setattr(seeder_http, "STALL_TIMEOUT", 0.2)
    seen: list[int] = []

    def answer(number: int, request: bytes) -> tuple[bytes, bool]:
        seen.append(number)
        return (ok(b"first"), False) if len(seen) == 1 else (b"", False)  # then silence, the connection kept open

    async with raw_server(answer) as url:
        client = SeederHttp("test")
        try:
            assert bytes(await client.post(url, {}, b"x", 100)) == b"first"
            with pytest.raises(TimeoutError, match="sent nothing"):
                await client.post(url, {}, b"x", 100)
        finally:
            client.close()
    assert seen == [1, 1]


async def test_a_200_a_proxy_encoded_is_read_through_aiohttp_from_then_on() -> None:
    reply = ok(b"\x1f\x8b not really gzip", "Content-Encoding: gzip")
    async with raw_server(lambda number, request: (reply, False)) as url:
        client = SeederHttp("test")
        try:
            assert client.plain(url) and await client.post(url, {}, b"x", 100) is None and not client.plain(url)
        finally:
            client.close()


@pytest.mark.parametrize(
    "reply, error",
    [
        (ok(b"x" * 5000), "declares 5000 bytes, more than the 1000"),
        (b"HTTP/1.1 200 OK\r\nX-Filler: " + b"y" * 70_000 + b"\r\n\r\n", "headers"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789extra", "longer than it declared"),
    ],
    ids=["declared too long", "endless headers", "more than declared"],
)
async def test_what_no_honest_seeder_sends_is_refused(reply: bytes, error: str) -> None:
    async with raw_server(lambda number, request: (reply, False)) as url:
        with pytest.raises(PackError, match=error):
            await post(url, most=1000)


async def test_an_answer_cut_short_is_an_error_to_retry_not_a_short_answer() -> None:
    async with raw_server(lambda number, request: (ok(b"z" * 1000)[:-400], True)) as url:
        with pytest.raises(PackError, match="cut short"):
            await post(url)


async def test_a_connection_the_seeder_means_to_close_is_not_reused() -> None:
    async with raw_server(lambda number, request: (ok(b"%d" % number, "Connection: close"), True)) as url:
        client = SeederHttp("test")
        try:
            assert [bytes(await client.post(url, {}, b"x", 10)) for _ in range(3)] == [b"1", b"2", b"3"]
        finally:
            client.close()


def test_a_buffer_still_read_elsewhere_is_not_handed_on() -> None:
    buffers = Buffers()
    answer = buffers.take(100)
    held = answer.obj
    still = pickle.PickleBuffer(answer)  # a reader that still holds the answer's buffer
    buffers.give_back(answer)
    assert buffers.take(100).obj is not held
    still.release()
    answer = buffers.take(100)
    held = answer.obj
    buffers.give_back(answer)
    assert buffers.take(80).obj is held  # a larger buffer serves a smaller answer


def test_buffers_come_in_whole_mib_so_one_kept_serves_a_larger_answer_and_all_go_when_a_download_ends() -> None:
    buffers = Buffers()
    first = buffers.take(3_000_000)
    held = first.obj
    assert len(first) == 3_000_000 and len(held) == 3 * Buffers.STEP
    buffers.give_back(first)
    second = buffers.take(3_100_000)  # a larger answer than the first, within its buffer
    assert second.obj is held and len(second) == 3_100_000
    buffers.give_back(second)
    buffers.clear()
    assert buffers.take(100).obj is not held
