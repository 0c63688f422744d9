"""The error middleware the tracker and the seeder share: each kind of failure gets its status and a JSON body
that says what to do, with the request id; a bug gets a 500 with no trace in the answer."""

from __future__ import annotations

import errno
import logging
from typing import Any

from aiohttp import web

from shared.errors import ChunkMissing, LocalProtocolError, MistError, PackError, StoreError, TicketError
from shared.service.errors import error_middleware, status_for


class Unavailable(MistError):
    """As a service's own errors are (tracker/errors.py): a status, a detail and headers of their own."""

    status = 503
    detail = {"unavailable": "database"}
    headers = {"Retry-After": "5"}


def app_raising(exc: BaseException, **options: Any) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    app = web.Application(middlewares=[error_middleware(logging.getLogger("test"), **options)])
    app.router.add_get("/", handler)
    return app


async def test_domain_errors_get_their_status_detail_and_headers(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_raising(Unavailable("the database is unavailable; try again")))
    response = await client.get("/")
    body = await response.json()
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert body["detail"] == {"unavailable": "database"} and "try again" in body["error"] and "request_id" in body


async def test_a_bug_is_a_500_without_its_trace(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_raising(RuntimeError("secret internals"), where="seeder"))
    response = await client.get("/")
    body = await response.json()
    assert response.status == 500 and body["error"] == "internal error; the seeder's log has the details"


async def test_a_full_disk_says_to_free_space_whoever_wrote(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_raising(OSError(errno.ENOSPC, "No space left on device")))
    response = await client.get("/")
    assert response.status == 507 and "free space" in (await response.json())["error"]


async def test_aiohttp_answers_become_json_and_a_hook_sees_domain_errors(aiohttp_client: Any) -> None:
    seen: list[MistError] = []
    client = await aiohttp_client(app_raising(TicketError("forged"), on_error=lambda request, exc: seen.append(exc),
                                              too_large="send less"))
    response = await client.get("/")
    assert response.status == 403 and (await response.json())["error"] == "forged" and len(seen) == 1
    response = await client.get("/nowhere")
    assert response.status == 404 and (await response.json())["error"] == "Not Found"
    client = await aiohttp_client(app_raising(web.HTTPRequestEntityTooLarge(max_size=1, actual_size=2), too_large="send less"))
    response = await client.get("/")
    assert response.status == 413 and (await response.json())["error"] == "send less"


def test_the_status_table() -> None:
    assert status_for(ChunkMissing("gone")) == 404 and status_for(StoreError("full")) == 507
    assert status_for(MistError("other")) == 400 and status_for(Unavailable()) == 503


async def test_a_domain_error_keeps_its_own_words_even_when_the_disk_is_full(aiohttp_client: Any) -> None:
    full = StoreError("chunk store is out of disk space; free space or move the store, then push again")
    full.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    client = await aiohttp_client(app_raising(full))
    response = await client.get("/")
    assert response.status == 507 and "push again" in (await response.json())["error"]


async def test_whose_protocol_breach_decides_the_answer(aiohttp_client: Any, caplog: Any) -> None:
    """The caller's breach is its 400, with what was wrong; the service's own is a bug: a 500, and its log says so."""
    client = await aiohttp_client(app_raising(PackError("hash list must be a multiple of 32 bytes (got 5)")))
    response = await client.get("/")
    assert response.status == 400 and "multiple of 32" in (await response.json())["error"]
    with caplog.at_level(logging.ERROR, logger="test"):
        client = await aiohttp_client(app_raising(LocalProtocolError("pack records are named by a SHA-256"), where="seeder"))
        response = await client.get("/")
    body = await response.json()
    assert response.status == 500 and body["error"] == "internal error; the seeder's log has the details"
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [LocalProtocolError]
    assert "a bug broke the protocol" in caplog.text
