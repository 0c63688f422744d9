"""The client asks for a manifest as a delta from the build it holds, rebuilds it, and takes the whole manifest
from a tracker that sends a delta that does not rebuild, or that answers (as an older one does) whole."""

from __future__ import annotations

import hashlib

import pytest
from aiohttp import web

from client.api import Api
from client.credentials import Credentials
from shared import manifest_delta

OLD = b'{"files":[' + b",".join(b'"%064x"' % i for i in range(500)) + b'],"version":"1"}'
NEW = OLD.replace(b'"%064x"' % 3, b'"%064x"' % 9999).replace(b'"1"}', b'"2"}')
DIGEST_OLD, DIGEST_NEW = hashlib.sha256(OLD).hexdigest(), hashlib.sha256(NEW).hexdigest()


@pytest.fixture
async def tracker(aiohttp_server):
    asked: list[str] = []

    async def manifest(request: web.Request) -> web.Response:
        base = request.query.get("from", "")
        asked.append(f"{request.match_info['game']}:{base}")
        headers = {"X-Mist-Signature": "sig", "X-Mist-Digest": DIGEST_NEW}
        if base == DIGEST_OLD and request.match_info["game"] == "good":
            return web.Response(body=manifest_delta.make(OLD, NEW), headers={**headers, "X-Mist-Delta-From": base})
        if base == DIGEST_OLD and request.match_info["game"] == "broken":
            damaged = bytearray(manifest_delta.make(OLD, NEW))
            damaged[-8] ^= 0xFF
            return web.Response(body=bytes(damaged), headers={**headers, "X-Mist-Delta-From": base})
        return web.Response(body=NEW, headers=headers)  # "old": a tracker that knows no deltas

    app = web.Application()
    app.add_routes([web.get("/api/games/{game}/builds/{version}/manifest", manifest)])
    server = await aiohttp_server(app)
    server.asked = asked
    return server


@pytest.mark.parametrize("game, asks", [("good", 1), ("broken", 2), ("old", 1)])
async def test_the_new_manifest_is_the_same_bytes_however_it_came(tracker, game: str, asks: int) -> None:
    creds = Credentials(str(tracker.make_url("")), "friend", "user", "t", 2**40, "r", "k")
    async with Api(creds, lambda c: None) as api:
        signed = await api.manifest(game, "2", (DIGEST_OLD, OLD))
    assert signed.data == NEW and signed.digest == DIGEST_NEW and signed.signature == "sig"
    assert signed.delta_from == (DIGEST_OLD if game == "good" else "")
    delta = len(manifest_delta.make(OLD, NEW))
    assert signed.received == {"good": delta, "broken": delta + len(NEW), "old": len(NEW)}[game]  # all that came
    assert len(tracker.asked) == asks and tracker.asked[-1] == f"{game}:" + (DIGEST_OLD if asks == 1 else "")
