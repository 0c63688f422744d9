"""The client reads a seeder's answer only up to what an honest one can weigh (it knows each batch's sizes), so a
hostile or broken seeder cannot make it buffer gigabytes: the batch is refused and fetched again."""

from __future__ import annotations

import pytest
from aiohttp import web

from client.api import Api
from client.credentials import Credentials
from client.errors import TrackerUnavailable
from shared.errors import PackError


@pytest.fixture
async def seeder(aiohttp_server):
    async def declares_a_lot(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(3 * 2**30)})
        await response.prepare(request)
        await response.write(b"x" * 1000)  # then nothing: the client must not wait for the rest
        return response

    async def streams_a_lot(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"y" * 65536)
        await response.write_eof()
        return response

    async def declared_in_pieces(request: web.Request) -> web.StreamResponse:
        pieces = [bytes([i]) * (1000 + 37 * i) for i in range(40)]
        short = request.query.get("short") == "1"
        response = web.StreamResponse(headers={"Content-Length": str(sum(map(len, pieces)) + (500 if short else 0))})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece)
        if short:  # then the connection ends, 500 bytes before what it declared
            assert request.transport is not None
            request.transport.close()
        return response

    app = web.Application()
    app.add_routes([web.post("/declares", declares_a_lot), web.post("/streams", streams_a_lot),
                    web.post("/pieces", declared_in_pieces)])
    return await aiohttp_server(app)


async def test_an_answer_over_its_bound_is_refused_by_its_declared_length_or_cut_off(seeder) -> None:
    creds = Credentials(str(seeder.make_url("")), "friend", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None) as api:
        with pytest.raises(PackError, match="declares"):
            await api.seeder(str(seeder.make_url("/declares")), "ticket", b"", most=10_000)
        with pytest.raises(PackError, match="cut off"):
            await api.seeder(str(seeder.make_url("/streams")), "ticket", b"", most=1_000_000)
        assert len(await api.seeder(str(seeder.make_url("/streams")), "ticket", b"", most=5_000_000)) == 64 * 65536


async def test_an_answer_of_declared_length_arrives_whole_from_many_pieces_and_a_short_one_is_asked_again(seeder) -> None:
    creds = Credentials(str(seeder.make_url("")), "friend", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None) as api:
        answer = await api.seeder(str(seeder.make_url("/pieces")), "ticket", b"", most=1_000_000)
        assert bytes(answer) == b"".join(bytes([i]) * (1000 + 37 * i) for i in range(40))
        with pytest.raises((PackError, TrackerUnavailable)):  # both make the download ask for the batch again
            await api.seeder(str(seeder.make_url("/pieces?short=1")), "ticket", b"", most=1_000_000)
