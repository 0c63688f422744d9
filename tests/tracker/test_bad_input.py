"""Every endpoint answers bad input with a JSON error that says what was wrong, a fitting status, and no trace."""

from __future__ import annotations

import pytest



@pytest.fixture
async def api(admin_session):
    _, client, admin = admin_session
    return client, admin


async def error(response) -> tuple[int, str]:
    assert response.content_type == "application/json", await response.text()
    body = await response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["request_id"] == response.headers["X-Request-Id"]  # the user can quote it from either
    assert "Traceback" not in body["error"] and "File \"" not in body["error"]
    return response.status, body["error"]


@pytest.mark.parametrize("body, status, says", [
    (b"not json", 400, "JSON object"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"slug": "ok"}', 400, "'title' is required"),
    (b'{"slug": 7, "title": "x"}', 400, "'slug' must be a str"),
    (b'{"slug": "ok", "title": "x", "extra": 1}', 400, "unknown field"),
    (b'{"slug": "ok", "title": "x", "private": "yes"}', 400, "'private' must be a bool"),
    (b'{"slug": "Robert\'); DROP TABLE games;--", "title": "x"}', 400, "game slug must be"),
    (b'{"slug": "ok\\n", "title": "x"}', 400, "game slug must be"),
    (b'{"slug": "\\u0430bc", "title": "x"}', 400, "game slug must be"),  # Cyrillic a: looks like 'abc'
    (b'{"slug": "ok", "title": "bad\\u0000title"}', 400, "printable"),
    (b'{"slug": "ok", "title": ""}', 400, "1-200 printable"),
])
async def test_new_game_rejects_bad_bodies(api, body, status, says) -> None:
    client, admin = api
    got = await error(await client.post("/api/games", data=body, headers={**admin, "Content-Type": "application/json"}))
    assert got[0] == status and says in got[1], got


async def test_sql_looking_strings_are_just_strings(api) -> None:
    client, admin = api
    title = "'; DELETE FROM users; -- 🎮 Ünïcödé"
    created = await client.post("/api/games", json={"slug": "sql", "title": title}, headers=admin)
    assert created.status == 201
    shown = await (await client.get("/api/games/sql", headers=admin)).json()
    assert shown["title"] == title
    status, says = await error(await client.post("/api/login", json={"user": "admin' OR '1'='1", "password": "x' OR '1'='1"}))
    assert status == 401 and says == "wrong user name or password"


@pytest.mark.parametrize("name", ["", "a b", "../etc", "x" * 65, "name\n", "ñame"])
async def test_user_names_are_plain(api, name) -> None:
    client, admin = api
    status, says = await error(await client.post("/api/users", json={"name": name, "password": "long-enough"}, headers=admin))
    assert status == 400 and "user name must be" in says


async def test_an_oversize_body_is_refused_with_413(api) -> None:
    client, admin = api
    huge = b"{" + b" " * (1024 * 1024) + b"}"
    status, says = await error(await client.post("/api/games", data=huge, headers={**admin, "Content-Type": "application/json"}))
    assert status == 413 and "small JSON object" in says


async def test_a_malformed_manifest_is_refused_with_what_is_wrong(api) -> None:
    client, admin = api
    await client.post("/api/games", json={"slug": "m", "title": "M"}, headers=admin)
    status, says = await error(await client.post("/api/games/m/builds", data=b'{"format": 1}', headers=admin))
    assert status == 422 and "manifest must have exactly the keys" in says


async def test_unknown_routes_and_methods_answer_in_json(api) -> None:
    client, admin = api
    assert (await error(await client.get("/api/nothing-here", headers=admin)))[0] == 404
    assert (await error(await client.delete("/api/games", headers=admin)))[0] == 405


@pytest.mark.parametrize("body, says", [
    ({"have": [], "write": ["nope.bin"]}, "'nope.bin' is not a file of plan 1"),
    ({"have": ["NOT-A-DIGEST"], "write": []}, "build digests"),
    ({"have": ["ab" * 32] * 65, "write": []}, "at most 64"),
    ({"have": [], "write": ["a.bin", "a.bin"]}, "distinct"),
    ({"have": [], "write": [7]}, "distinct file paths"),
    ({"have": {}, "write": []}, "'have' must be a list"),
])
async def test_the_plan_route_rejects_bad_bodies(api, body, says) -> None:
    from shared.chunking import DEFAULT_PARAMS
    from shared.manifest import FileEntry, Manifest

    client, admin = api
    await client.post("/api/games", json={"slug": "plan", "title": "Plan"}, headers=admin)
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    build = Manifest("plan", "1", DEFAULT_PARAMS, (FileEntry("a.bin", 0, False, empty, ()),))
    assert (await client.post("/api/games/plan/builds", data=build.canonical_bytes(), headers=admin)).status == 201
    got = await error(await client.post("/api/games/plan/builds/1/plan", json=body, headers=admin))
    assert got[0] == 400 and says in got[1], got


async def test_a_chunked_body_without_a_length_is_held_to_the_same_limit(api) -> None:
    client, admin = api

    async def chunked():
        yield b'{"slug": "big", "title": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    got = await error(await client.post("/api/games", data=chunked(), headers={**admin, "Content-Type": "application/json"}))
    assert got[0] == 413 and "larger than 65536 bytes" in got[1], got


DEEP = b"[" * 20000 + b"]" * 20000  # nested deeper than any parser recurses


async def test_deeply_nested_json_is_bad_input_everywhere_not_an_internal_error(api) -> None:
    client, admin = api
    for path, headers in (("/api/login", {}), ("/api/refresh", {}), ("/api/games", admin),
                          ("/api/games/nope/builds", admin)):
        response = await client.post(path, data=DEEP, headers=headers)
        status, _ = await error(response)
        assert status in (400, 404, 422), (path, status)  # the commit's 404: its game does not exist; never a 500
    await client.post("/api/games", json={"slug": "deep", "title": "Deep"}, headers=admin)
    status, says = await error(await client.post("/api/games/deep/builds", data=DEEP, headers=admin))
    assert status == 422 and "not valid UTF-8 JSON" in says
    ws = await client.ws_connect("/api/swarm", headers=admin)
    assert (await ws.receive_json())["op"] == "welcome"
    await ws.send_str(DEEP.decode())
    assert (await ws.receive_json())["op"] == "error"  # and the socket stays open
    await ws.send_str('{"op": "find", "game": "deep", "id": 2}')
    assert (await ws.receive_json())["id"] == 2
    await ws.close()
