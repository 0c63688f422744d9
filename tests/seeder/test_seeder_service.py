"""The standalone seeder's root: /metrics counting what it served and refused, and /healthz on its store."""

from __future__ import annotations

import os

import random

import pytest

from seeder.app import SeederContext, make_service
from shared import compression, pack, patch
from shared.chunking import DEFAULT_PARAMS
from shared.chunkstore import DirectoryChunkStore
from shared.manifest import Manifest
from shared.service.settings import ServiceSettings
from shared.signing import Signer
from shared.tickets import READ, Ticket
from tests.scrape import Scrape
from tests.stored import store_file

OLD = random.Random(7).randbytes(300_000)
NEW = OLD[:150_000] + b"second release" + OLD[150_000:]


@pytest.fixture
async def seeder(tmp_path, aiohttp_client):
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    signer = Signer.generate()
    build = Manifest("game", "2", DEFAULT_PARAMS, (store_file(store, "a.bin", NEW),))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    client = await aiohttp_client(make_service(SeederContext(store, signer.public_key)))
    ticket = Ticket("friend", READ, build.digest(), 2**40).encode(signer)
    return client, store, build, {"Authorization": f"Ticket {ticket}"}


async def scrape(client, headers: dict | None = None) -> Scrape:
    response = await client.get("/metrics", headers=headers or {})
    assert response.status == 200
    return Scrape(await response.text())


async def test_chunks_patches_and_missing_objects_are_counted_apart(seeder) -> None:
    client, store, build, headers = seeder
    chunks = [ref.sha256 for ref in build.files[0].chunks]
    obj = patch.make(OLD, NEW, patch.HDIFF)
    name = patch.object_name(obj)
    store.put(name, compression.compress(obj))
    gone = chunks[-1]
    store.path(gone).unlink()
    response = await client.post("/seeder/fetch", data=pack.encode_hashes([*chunks, name]), headers=headers)
    assert response.status == 200
    body = await response.read()
    scraped = await scrape(client)
    assert scraped["mist_seeder_chunks_served_total"] == len(chunks) - 1
    assert scraped["mist_seeder_chunk_bytes_served_total"] == sum(store.sizes(chunks[:-1]).values())
    assert scraped["mist_seeder_patches_served_total"] == 1
    assert scraped["mist_seeder_patch_bytes_served_total"] == store.sizes([name])[name]
    assert scraped["mist_seeder_objects_missing_total"] == 1
    assert scraped[("mist_http_response_bytes_total", {"route": "/seeder/fetch"})] == len(body)


async def test_single_objects_are_counted_like_those_in_packs(seeder) -> None:
    client, store, build, headers = seeder
    first, gone = build.files[0].chunks[0].sha256, build.files[0].chunks[-1].sha256
    store.path(gone).unlink()
    sent = await client.get(f"/seeder/chunk/{first}", headers=headers)
    assert sent.status == 200 and len(await sent.read()) == store.sizes([first])[first]
    assert (await client.get(f"/seeder/chunk/{gone}", headers=headers)).status == 404
    scraped = await scrape(client)
    assert scraped["mist_seeder_chunks_served_total"] == 1
    assert scraped["mist_seeder_chunk_bytes_served_total"] == store.sizes([first])[first]
    assert scraped["mist_seeder_objects_missing_total"] == 1


async def test_ticket_refusals_are_counted_and_their_errors_carry_the_request_id(seeder) -> None:
    client, _, build, headers = seeder
    chunk = build.files[0].chunks[0].sha256
    no_ticket = await client.post("/seeder/fetch", data=pack.encode_hashes([chunk]), headers={"X-Request-Id": "r-1"})
    assert no_ticket.status == 403 and no_ticket.headers["X-Request-Id"] == "r-1"
    assert (await no_ticket.json())["request_id"] == "r-1"
    other = await client.post("/seeder/fetch", data=pack.encode_hashes(["ab" * 32]), headers=headers)
    assert other.status == 403
    bad_pack = await client.post("/seeder/fetch", data=b"not hashes", headers=headers)
    assert bad_pack.status == 400  # refused, but not for its ticket
    scraped = await scrape(client)
    assert scraped["mist_seeder_ticket_refusals_total"] == 2
    assert scraped[("mist_http_requests_total", {"route": "/seeder/fetch", "status": "403"})] == 2


async def test_healthz_checks_the_store_can_be_written(seeder) -> None:
    client, store, _, _ = seeder
    for path in ("/healthz", "/seeder/healthz"):
        response = await client.get(path)
        assert response.status == 200 and await response.json() == {"ok": True, "pid": os.getpid(), "store": "ok", "disk": "ok"}
    assert not list(store.root.glob(".tmp-healthz-*"))  # the probe is removed
    store.root.rename(store.root.with_name("elsewhere"))
    broken = await client.get("/healthz")
    assert broken.status == 503
    body = await broken.json()
    assert body["ok"] is False and "cannot be read and written" in body["store"] and str(store.root) in body["store"]


async def test_metrics_need_the_token_when_one_is_set(seeder, aiohttp_client) -> None:
    _, store, _, _ = seeder
    service = ServiceSettings(metrics_token="s3cret-token")
    client = await aiohttp_client(make_service(SeederContext(store, Signer.generate().public_key, service=service)))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    scraped = await scrape(client, {"Authorization": "Bearer s3cret-token"})
    assert scraped[("mist_http_requests_total", {"route": "/metrics", "status": "401"})] == 2
    assert (await client.get("/healthz")).status == 200  # health needs no token
