"""Each seeder route refuses a body over its own limit by the declared length, before reading it, also when the
seeder is mounted in the embedded server (whose application takes manifests of 256 MiB)."""

from __future__ import annotations

import asyncio

from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from tests.stored import store_file


async def ticket(admin_session) -> tuple[object, str, Manifest]:
    ctx, client, admin = admin_session
    await client.post("/api/games", json={"slug": "big", "title": "Big"}, headers=admin)
    build = Manifest("big", "1", DEFAULT_PARAMS, (store_file(ctx.store, "a.bin", b"a" * 100_000),))
    assert (await client.post("/api/games/big/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    answer = await (await client.post("/api/games/big/builds/1/ticket", headers=admin)).json()
    return client, answer["ticket"], build


async def raw_request(client, head: str, body: bytes = b"") -> bytes:
    """Send a request by hand (a declared length the client never sends) and read the answer's status line."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head.encode() + body)
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    return status


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(admin_session) -> None:
    client, read, _ = await ticket(admin_session)
    for path in ("/seeder/fetch", "/seeder/delta"):
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Ticket {read}\r\n"
                f"Content-Length: {200 * 1024 * 1024}\r\n\r\n")
        status = await raw_request(client, head)  # no byte of the 200 MiB was sent: the answer comes anyway
        assert status.startswith(b"HTTP/1.1 413"), (path, status)


async def test_a_chunked_body_is_counted_as_it_comes(admin_session) -> None:
    client, read, build = await ticket(admin_session)
    piece = b"\x00" * 65536
    chunked = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
    head = f"POST /seeder/fetch HTTP/1.1\r\nHost: x\r\nAuthorization: Ticket {read}\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert (await raw_request(client, head, chunked)).startswith(b"HTTP/1.1 413")
    hashes = bytes.fromhex(build.files[0].chunks[0].sha256)
    fine = await client.post("/seeder/fetch", data=hashes, headers={"Authorization": f"Ticket {read}"})
    assert fine.status == 200  # within the limit
