"""Request ids: taken from the caller when sane, echoed, on every log line of the request, in error bodies."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import pytest
from tests import backends
from aiohttp import web
from sqlalchemy import text

from client.api import login
from client.errors import ServerRefused
from shared.service import observability
from shared.service.metrics import METRICS, HttpMetrics, Registry, metrics_route
from shared.logs import JsonFormatter
from shared.service.observability import RequestIdFilter, sane_request_id
from tests.scrape import Scrape
from tracker.app import make_app
from tracker.config import TrackerContext

FRESH = re.compile(r"^[0-9a-f]{16}\Z")
log = logging.getLogger("mist.test")


@pytest.mark.parametrize("value", ["0f8fad5b-d9cb-469f-a165-70867728950e", "abc", "svc.1:req-9_x", "a" * 128])
def test_sane_ids_are_kept(value: str) -> None:
    assert sane_request_id(value) == value


@pytest.mark.parametrize("value", [
    None, "", "a" * 129, "abc\ndef", "abc\r\nX-Admin: 1", "a b", 'a"b', "a\tb", "é", "-starts-with-dash", "a\x1b[2J",
])
def test_other_ids_are_refused(value: str | None) -> None:
    assert sane_request_id(value) is None


@pytest.fixture
def lines():
    """Log records of the `mist` loggers while the test runs, formatted as the services write them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    mist = logging.getLogger("mist")
    old_level = mist.level
    mist.addHandler(handler)
    mist.setLevel(logging.INFO)

    def read() -> list[dict]:
        return [json.loads(line) for line in out.getvalue().splitlines()]

    yield read
    mist.removeHandler(handler)
    mist.setLevel(old_level)


@pytest.fixture
async def client(aiohttp_client):
    async def busy(request: web.Request) -> web.Response:
        log.info("in the handler")
        await asyncio.to_thread(log.info, "in a worker thread")
        return web.json_response({"done": True})

    async def broken(request: web.Request) -> web.Response:
        return observability.error_json(409, "that conflicts")

    registry = Registry()
    app = web.Application(middlewares=[observability.observe(HttpMetrics.on(registry))])
    app[METRICS] = registry
    observability.install(app)
    app.add_routes([web.get("/busy", busy), web.get("/broken", broken), metrics_route()])
    return await aiohttp_client(app)


async def test_the_callers_id_is_echoed_and_on_every_line_of_the_request(client, lines) -> None:
    response = await client.get("/busy", headers={"X-Request-Id": "trace-42"})
    assert response.status == 200 and response.headers["X-Request-Id"] == "trace-42"
    written = lines()
    assert [(line["message"], line["request_id"]) for line in written] == [
        ("in the handler", "trace-42"), ("in a worker thread", "trace-42"), ("127.0.0.1 GET /busy 200", "trace-42")]
    access = written[-1]
    assert access["logger"] == "mist.access" and access["level"] == "INFO"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/busy", 200)
    assert access["bytes"] == len(await response.read()) and access["duration_ms"] > 0
    log.info("after the request")
    assert lines()[-1]["request_id"] is None


async def test_each_request_without_an_id_gets_its_own(client, lines) -> None:
    first, second = await client.get("/busy"), await client.get("/busy")
    ids = first.headers["X-Request-Id"], second.headers["X-Request-Id"]
    assert all(FRESH.match(i) for i in ids) and ids[0] != ids[1]
    assert {line["request_id"] for line in lines()} == set(ids)


async def test_an_error_body_carries_the_request_id(client) -> None:
    response = await client.get("/broken", headers={"X-Request-Id": "quote-me"})
    assert response.status == 409
    assert await response.json() == {"error": "that conflicts", "detail": None, "request_id": "quote-me"}
    missing = await client.get("/no/such/route", headers={"X-Request-Id": "lost-1"})
    assert missing.status == 404 and missing.headers["X-Request-Id"] == "lost-1"


@pytest.mark.parametrize("value", [b"x" * 300, b"evil\tid", "caf\u00e9".encode(), b'a"b <script>'])
async def test_an_unsafe_id_is_replaced_before_it_reaches_a_log_line(client, lines, value: bytes) -> None:
    """Sent on a raw socket: HTTP clients refuse to send most of these, an attacker's script does not."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET /busy HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-Id: " + value + b"\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200")
    echoed = re.search(r"X-Request-Id: (\S+)", head)
    assert echoed and FRESH.match(echoed.group(1)), head
    assert {line["request_id"] for line in lines()} == {echoed.group(1)}


async def test_requests_are_counted_by_route_template_and_status(client) -> None:
    for _ in range(3):
        await client.get("/busy")
    await client.get("/broken")
    await client.get("/no/such/route")
    scraped = Scrape(await (await client.get("/metrics")).text())
    assert scraped[("mist_http_requests_total", {"route": "/busy", "method": "GET", "status": "200"})] == 3
    assert scraped[("mist_http_requests_total", {"route": "/broken", "status": "409"})] == 1
    assert scraped[("mist_http_requests_total", {"route": "unmatched", "status": "404"})] == 1
    assert scraped[("mist_http_request_duration_seconds_count", {"route": "/busy"})] == 3
    assert scraped[("mist_http_response_bytes_total", {"route": "/busy"})] == 3 * len(b'{"done": true}')


async def test_a_server_error_gives_the_user_an_id_that_finds_the_server_s_log_line(tmp_path, aiohttp_client, lines) -> None:
    """The real tracker with its users table gone, and the real client's login: the message quotes the id."""
    ctx = TrackerContext.open(backends.settings(tmp_path))
    client = await aiohttp_client(make_app(ctx))
    with ctx.db.engine.begin() as connection:  # SQLite or PostgreSQL alike (tests/backends.py)
        connection.execute(text("ALTER TABLE users RENAME TO users_gone"))
    with pytest.raises(ServerRefused) as refused:
        await login(str(client.make_url("")).rstrip("/"), "admin", "whatever-password")
    assert refused.value.status == 500
    quoted = re.search(r"request id ([0-9a-f]{16}): quote it", str(refused.value))
    assert quoted, str(refused.value)
    logged = [line for line in lines() if line["request_id"] == quoted.group(1)]
    assert [line["logger"] for line in logged] == ["mist.tracker", "mist.access"]
    assert "unhandled error in POST /api/login" in logged[0]["message"] and "users" in logged[0]["exception"]
