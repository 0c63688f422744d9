"""GET /chunk/<sha256>: one object under a read ticket, sent by sendfile or, behind nginx, by nginx (X-Accel-Redirect)."""

from __future__ import annotations

import os
import random

import pytest

from shared import compression
from shared.chunkstore import DirectoryChunkStore
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import Signer
from shared.tickets import READ, UPLOAD, Ticket
from seeder.app import SeederContext, make_app
from tests.stored import store_file
from tests.clock import Clock

DATA = random.Random(7).randbytes(300_000)
OTHER = random.Random(8).randbytes(100_000)



@pytest.fixture
def world(tmp_path):
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    signer = Signer.generate()
    entry = store_file(store, "a.bin", DATA)
    build = Manifest("game", "1", DEFAULT_PARAMS, (entry,))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    other = store_file(store, "b.bin", OTHER)  # in the store, not in the build
    ticket = Ticket("friend", READ, build.digest(), 1_000_100).encode(signer)
    return store, signer, build, other, {"Authorization": f"Ticket {ticket}"}


async def serve(aiohttp_client, store, signer, accel: str = "", clock=None):
    ctx = SeederContext(store, signer.public_key, clock or Clock(1_000_000.0), accel_redirect=accel)
    return await aiohttp_client(make_app(ctx))


async def test_a_chunk_of_the_build_is_sent_whole(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer)
    name = build.files[0].chunks[0].sha256
    response = await client.get(f"/chunk/{name}", headers=headers)
    assert response.status == 200
    assert await response.read() == store.get(name)
    assert response.headers["ETag"] == f'"{name}"' and "X-Accel-Redirect" not in response.headers


async def test_a_head_request_gets_the_head_alone_and_the_connection_stays_usable(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer)
    first, second = build.files[0].chunks[0].sha256, build.files[0].chunks[1].sha256
    response = await client.head(f"/chunk/{first}", headers=headers)
    assert response.status == 200 and int(response.headers["Content-Length"]) == len(store.get(first))
    response = await client.get(f"/chunk/{second}", headers=headers)  # the same keep-alive connection
    assert await response.read() == store.get(second)


async def test_without_a_ticket_or_with_an_upload_ticket_it_is_refused(world, aiohttp_client) -> None:
    store, signer, build, _, _ = world
    client = await serve(aiohttp_client, store, signer, accel="/_store/")
    name = build.files[0].chunks[0].sha256
    response = await client.get(f"/chunk/{name}")
    assert response.status == 403 and "needs a ticket" in (await response.json())["error"]
    upload = Ticket("admin", UPLOAD, "", 1_000_100).encode(signer)
    response = await client.get(f"/chunk/{name}", headers={"Authorization": f"Ticket {upload}"})
    assert response.status == 403 and "X-Accel-Redirect" not in response.headers
    forged = Ticket("friend", READ, build.digest(), 1_000_100).encode(Signer.generate())
    response = await client.get(f"/chunk/{name}", headers={"Authorization": f"Ticket {forged}"})
    assert response.status == 403 and "signature" in (await response.json())["error"]


async def test_a_chunk_outside_the_tickets_build_is_refused(world, aiohttp_client) -> None:
    store, signer, _, other, headers = world
    client = await serve(aiohttp_client, store, signer, accel="/_store/")
    response = await client.get(f"/chunk/{other.chunks[0].sha256}", headers=headers)
    assert response.status == 403 and "not part of the build" in (await response.json())["error"]
    assert "X-Accel-Redirect" not in response.headers


async def test_behind_nginx_the_answer_names_the_objects_file(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer, accel="/_store/")
    name = build.files[0].chunks[1].sha256
    response = await client.get(f"/chunk/{name}", headers=headers)
    assert response.status == 200
    assert response.headers["X-Accel-Redirect"] == f"/_store/{name[:2]}/{name[2:4]}/{name}"
    assert await response.read() == b""


async def test_a_chunk_of_the_build_missing_from_the_store_is_404(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer, accel="/_store/")
    name = build.files[0].chunks[0].sha256
    store.path(name).unlink()
    response = await client.get(f"/chunk/{name}", headers=headers)
    assert response.status == 404 and "not in the store" in (await response.json())["error"]


async def test_a_ticket_verified_once_still_expires(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    clock = Clock(1_000_000.0)
    client = await serve(aiohttp_client, store, signer, clock=clock)
    name = build.files[0].chunks[0].sha256
    assert (await client.get(f"/chunk/{name}", headers=headers)).status == 200
    clock.now = 1_000_100
    response = await client.get(f"/chunk/{name}", headers=headers)
    assert response.status == 403 and "expired" in (await response.json())["error"]


async def test_health_check_says_which_process_answered(world, aiohttp_client) -> None:
    store, signer, _, _, _ = world
    client = await serve(aiohttp_client, store, signer)
    assert await (await client.get("/healthz")).json() == {"ok": True, "pid": os.getpid(), "store": "ok", "disk": "ok"}
