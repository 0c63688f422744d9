"""A broken or hostile server cannot crash the client or make it hold what it sends: answers nested too deep to
decode and answers longer than their kind can be are refused in one sentence (issue 17.4, 17.6); the daemon's own
API treats a nested body as bad input, not a crash."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiohttp import web

from client.api import Api, login
from client.app import api as daemon_api
from client.credentials import Credentials
from client.errors import ServerRefused, TrackerUnavailable, TrackerUnreadable
from client.signalling import Signalling
from shared.errors import MistError, RemoteProtocolError

DEEP = b"[" * 20_000


@pytest.fixture
async def hostile(aiohttp_server):
    async def deep(request: web.Request) -> web.Response:
        return web.Response(body=DEEP, content_type="application/json")

    async def deep_error(request: web.Request) -> web.Response:
        return web.Response(status=400, body=b'{"error": ' + DEEP, content_type="application/json")

    async def declares_a_lot(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(3 * 2**30), "Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b"[1")  # then nothing: the client must not wait for the rest
        return response

    async def long_error(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=403)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b'{"error": "' + b"x" * 65536)
        for _ in range(32):
            await response.write(b"x" * 65536)
        await response.write(b'"}')
        await response.write_eof()
        return response

    async def a_list(request: web.Request) -> web.Response:
        return web.json_response([{"slug": "game"}])  # valid JSON, but no answer of Mist's API is a list

    app = web.Application()
    app.add_routes([web.post("/api/login", deep), web.get("/api/info", deep), web.get("/api/games", declares_a_lot),
                    web.get("/api/users", deep_error), web.get("/api/jobs", long_error), web.get("/api/friends", a_list)])
    return await aiohttp_server(app)


async def test_hostile_answers_are_refused_in_a_sentence_without_being_held(hostile) -> None:
    url = str(hostile.make_url("")).rstrip("/")
    with pytest.raises(TrackerUnreadable, match="JSON Mist can read") as unreadable:
        await login(url, "friend", "password")  # not a RecursionError
    assert isinstance(unreadable.value, RemoteProtocolError)  # the tracker's breach, not ours
    assert isinstance(unreadable.value, TrackerUnavailable)  # and handled as an outage: retried later
    creds = Credentials(url, "friend", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None) as api:
        with pytest.raises(TrackerUnavailable, match="more than Mist reads .declares 3221225472 bytes"):
            await api.call("GET", "/api/games")
        with pytest.raises(ServerRefused) as refused:
            await api.call("GET", "/api/users")
        assert refused.value.status == 400 and "400 Bad Request" in str(refused.value)
        with pytest.raises(ServerRefused) as cut:  # 2 MiB of error message: read to 64 KiB, then given up
            await api.call("GET", "/api/jobs")
        assert cut.value.status == 403 and "xxxx" not in str(cut.value)
        with pytest.raises(TrackerUnavailable, match="JSON Mist can read"):  # not a TypeError further on
            await api.call("GET", "/api/friends")
        with pytest.raises(TrackerUnavailable, match="JSON Mist can read"):
            await api.follow_key()


async def test_the_daemon_api_reads_a_nested_body_as_bad_input(aiohttp_client) -> None:
    async def settings(request: web.Request) -> web.Response:
        try:
            return web.json_response(await daemon_api._body(request))
        except MistError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    app = web.Application()
    app.router.add_put("/api/settings", settings)
    client = await aiohttp_client(app)
    nested = await client.put("/api/settings", data=DEEP, headers={"Content-Type": "application/json"})
    assert nested.status == 400 and "must be a JSON object" in (await nested.json())["error"]
    fine = await client.put("/api/settings", json={"upload_limit": 5})
    assert await fine.json() == {"upload_limit": 5}


@pytest.fixture
async def swarm_saying(aiohttp_server):
    """A tracker's swarm socket that greets, then says what the test puts in `said` (one message per connection)."""
    said: list[dict] = []

    async def swarm(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for message in said.pop(0):
            await ws.send_json(message)
        async for asked in ws:
            body = asked.json()
            await ws.send_json({"id": body["id"], "op": "found", "peers": [{"peer": "p"}]})  # a friend without fields
        return ws

    app = web.Application()
    app.router.add_get("/api/swarm", swarm)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), said


async def test_swarm_messages_the_client_cannot_read_drop_the_connection_not_the_client(swarm_saying) -> None:
    """The tracker's breach of the swarm protocol ends that connection in a sentence (then it is made again with
    backoff); it never escapes as a KeyError that would end the daemon's swarm for good."""
    url, said = swarm_saying
    creds = Credentials(url, "friend", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None) as api:
        said.append([{"op": "welcome"}])  # no peer id
        signalling = Signalling(api)
        await signalling.run(forever=False)
        assert "swarm sent a welcome Mist cannot read" in signalling.last_error and not signalling.connected

        said.append([{"op": "welcome", "peer": "me", "public_key": "k"}, {"op": "signal", "kind": "offer"}])
        offers: list[object] = []

        async def take(offer: object) -> None:
            offers.append(offer)

        signalling = Signalling(api, on_offer=take)
        await signalling.run(forever=False)
        assert "swarm sent a offer Mist cannot read" in signalling.last_error and offers == []

        said.append([{"op": "welcome", "peer": "me", "public_key": "k"}])
        signalling = Signalling(api)
        runner = asyncio.create_task(signalling.run(forever=False))
        assert await signalling.wait_connected(30)
        with pytest.raises(TrackerUnreadable, match="list of friends"):
            await signalling.find("coop", "1")
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
