"""The seeder over an S3 bucket: objects stream through it (packs and single objects), or, with `link_seconds`,
GET /chunk checks the ticket and redirects to a signed URL the bucket itself answers (moto on loopback)."""

from __future__ import annotations

import random
import urllib.request
from typing import Any

import pytest

from seeder.app import SeederContext, make_app
from shared import compression, pack
from shared.chunkstore import ChunkStore
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.s3_store import S3ChunkStore
from shared.signing import Signer
from shared.tickets import READ, Ticket
from tests.clock import Clock
from tests.s3 import S3Server
from tests.stored import store_file

DATA = random.Random(17).randbytes(300_000)
OTHER = random.Random(18).randbytes(100_000)


@pytest.fixture(scope="module")
def world(s3_server: S3Server) -> tuple[ChunkStore, Signer, Manifest, Any, dict[str, str]]:
    store = S3ChunkStore(s3_server.bucket(), "objects/", s3_server.endpoint)
    signer = Signer.generate()
    entry = store_file(store, "a.bin", DATA)
    build = Manifest("game", "1", DEFAULT_PARAMS, (entry,))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    other = store_file(store, "b.bin", OTHER)  # in the bucket, not in the build
    ticket = Ticket("friend", READ, build.digest(), 1_000_100).encode(signer)
    return store, signer, build, other, {"Authorization": f"Ticket {ticket}"}


async def serve(aiohttp_client: Any, store: ChunkStore, signer: Signer, link_seconds: int = 0) -> Any:
    return await aiohttp_client(make_app(SeederContext(store, signer.public_key, Clock(1_000_000.0),
                                                       link_seconds=link_seconds)))


def fetch_url(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
        return body


async def test_a_pack_and_a_single_object_stream_from_the_bucket(world, aiohttp_client) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer)
    names = [ref.sha256 for ref in build.files[0].chunks]
    response = await client.post("/fetch", data=pack.encode_hashes(names), headers=headers)
    assert response.status == 200
    records = {r.sha256: bytes(r.payload) for r in pack.iter_records(await response.read())}
    assert records == {name: store.get(name) for name in names}
    response = await client.get(f"/chunk/{names[0]}", headers=headers, allow_redirects=False)
    assert response.status == 200 and await response.read() == store.get(names[0])


async def test_with_signed_links_the_bucket_sends_the_object_the_seeder_allowed(world, aiohttp_client) -> None:
    store, signer, build, other, headers = world
    client = await serve(aiohttp_client, store, signer, link_seconds=300)
    name = build.files[0].chunks[1].sha256
    response = await client.get(f"/chunk/{name}", headers=headers, allow_redirects=False)
    assert response.status == 307 and response.headers["Cache-Control"] == "private, no-store"
    link = response.headers["Location"]
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=300" in link  # SigV4, as R2 and B2 require
    assert fetch_url(link) == store.get(name)  # from the bucket, not through the seeder

    response = await client.get(f"/chunk/{other.chunks[0].sha256}", headers=headers, allow_redirects=False)
    assert response.status == 403 and "Location" not in response.headers  # the ticket check stays the seeder's
    response = await client.get(f"/chunk/{name}", allow_redirects=False)
    assert response.status == 403 and "Location" not in response.headers



async def test_a_link_to_an_object_the_bucket_lost_is_not_handed_out(world, aiohttp_client, s3_server) -> None:
    store, signer, build, _, headers = world
    client = await serve(aiohttp_client, store, signer, link_seconds=300)
    name = build.files[0].chunks[-1].sha256
    kept = store.get(name)
    store.remove(name)
    try:
        response = await client.get(f"/chunk/{name}", headers=headers, allow_redirects=False)
        assert response.status == 404 and "push the build again" in (await response.json())["error"]
    finally:
        store.put(name, kept)
