"""The seeder serves a patch only into a file of the ticket's build, and rdiff deltas only when they beat chunks."""

from __future__ import annotations

import random

import pytest

from shared import compression, pack, patch, patch_bundle, rdiff
from shared.chunkstore import DirectoryChunkStore
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import Signer
from shared.tickets import READ, Ticket
from seeder.app import SeederContext, make_app
from tests.stored import store_file

OLD = random.Random(5).randbytes(400_000)
NEW = OLD[:200_000] + b"release two" + OLD[200_000:]
OTHER = random.Random(6).randbytes(300_000)


def store_patch(store: DirectoryChunkStore, old: bytes, new: bytes) -> str:
    obj = patch.make(old, new, patch.HDIFF)
    store.put(patch.object_name(obj), compression.compress(obj))
    return patch.object_name(obj)


@pytest.fixture
async def seeder(tmp_path, aiohttp_client):
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    signer = Signer.generate()
    build = Manifest("game", "2", DEFAULT_PARAMS, (store_file(store, "a.bin", NEW),))
    data = build.canonical_bytes()
    store.put(build.digest(), compression.compress(data))
    store_file(store, "other.bin", OTHER)
    client = await aiohttp_client(make_app(SeederContext(store, signer.public_key)))
    ticket = Ticket("friend", READ, build.digest(), 2**40).encode(signer)
    return client, store, build, {"Authorization": f"Ticket {ticket}"}


async def test_a_patch_into_a_file_of_the_build_is_served(seeder) -> None:
    client, store, build, headers = seeder
    name = store_patch(store, OLD, NEW)
    response = await client.post("/fetch", data=pack.encode_hashes([name]), headers=headers)
    assert response.status == 200
    [record] = list(pack.iter_records(await response.read()))
    assert record.sha256 == name


async def test_a_patch_into_a_file_of_another_build_is_refused(seeder) -> None:
    client, store, _, headers = seeder
    name = store_patch(store, OLD, OTHER)
    response = await client.post("/fetch", data=pack.encode_hashes([name]), headers=headers)
    assert response.status == 403 and "not part of the build" in (await response.json())["error"]


async def test_a_patch_bundle_is_served_only_when_every_file_it_makes_is_of_the_build(seeder) -> None:
    client, store, _, headers = seeder
    served = patch_bundle.make([(OLD, NEW), (OLD[:1000], NEW)])
    mixed = patch_bundle.make([(OLD, NEW), (OLD[:1000], OTHER)])  # its first file is of the build, the second not
    for obj in (served, mixed):
        store.put(patch.object_name(obj), compression.compress(obj))
    response = await client.post("/fetch", data=pack.encode_hashes([patch.object_name(served)]), headers=headers)
    assert response.status == 200
    assert [r.sha256 for r in pack.iter_records(await response.read())] == [patch.object_name(served)]
    response = await client.post("/fetch", data=pack.encode_hashes([patch.object_name(mixed)]), headers=headers)
    assert response.status == 403 and "not part of the build" in (await response.json())["error"]


async def test_a_delta_is_sent_only_when_it_beats_the_budget(seeder, tmp_path) -> None:
    client, _, build, headers = seeder
    [entry] = build.files
    modded = tmp_path / "modded"
    modded.write_bytes(NEW[:100_000] + b"mod" + NEW[100_000:])
    request = rdiff.encode_request(entry.sha256, 400_000, rdiff.signature(modded))
    response = await client.post("/delta", data=request, headers=headers)
    assert response.status == 200
    body = await response.read()
    assert len(body) < 20_000
    delta = compression.decompress(body, compression.content_size(body))
    assert rdiff.patch(modded, delta, len(NEW)) == NEW

    exact = rdiff.encode_request(entry.sha256, len(body), rdiff.signature(modded))
    response = await client.post("/delta", data=exact, headers=headers)
    assert response.status == 204 and int(response.headers["X-Mist-Delta-Bytes"]) == len(body)
    stingy = rdiff.encode_request(entry.sha256, 10, rdiff.signature(modded))
    response = await client.post("/delta", data=stingy, headers=headers)
    assert response.status == 204 and response.headers["X-Mist-Delta-Bytes"] == "-1"  # not even tried


async def test_a_delta_to_a_file_outside_the_build_or_a_bad_request_is_refused(seeder, tmp_path) -> None:
    client, _, _, headers = seeder
    basis = tmp_path / "basis"
    basis.write_bytes(OLD)
    outside = rdiff.encode_request("cd" * 32, 10**9, rdiff.signature(basis))
    assert (await client.post("/delta", data=outside, headers=headers)).status == 403
    garbage = await client.post("/delta", data=b"short", headers=headers)
    assert garbage.status == 400 and "SHA-256" in (await garbage.json())["error"]

