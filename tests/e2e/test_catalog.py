"""The catalog and the Steam store: a local HTTP server speaks the real appdetails format; the worker fetches."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.conftest import ADMIN_PASSWORD, Person, start_server

ANSWERS: dict[str, object] = {}


class FakeSteam(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        app = parse_qs(urlparse(self.path).query)["appids"][0]
        answer = ANSWERS.get(app, {app: {"success": False}})
        if answer == "slow":
            time.sleep(3)  # the fake store is slow; the tracker's timeout (1 s) must fire first
            answer = {app: {"success": False}}
        body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def steam():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSteam)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def catalog_admin(steam, tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("catalog"), {"MIST_STEAM_URL": steam, "MIST_STEAM_TIMEOUT": "1"})
    person = Person(tmp_path_factory.mktemp("catalog-admin"), ADMIN_PASSWORD)
    person.run("mistpipe", "login", server.url, "--user", "admin")
    yield person
    server.process.terminate()
    server.process.wait(timeout=10)


def details(app: int, description: str, image: str) -> dict:
    return {str(app): {"success": True, "data": {"short_description": description, "header_image": image}}}


def test_setting_an_app_id_fetches_details_and_hand_edits_win(catalog_admin: Person) -> None:
    ANSWERS["100"] = details(100, "A bug's long journey.", "https://cdn.example/100.jpg")
    catalog_admin.run("mistpipe", "new-game", "knight", "--title", "Knight")
    catalog_admin.json("mistpipe", "edit", "knight", "--steam-app-id", "100")
    game = catalog_admin.json("mistpipe", "resync-steam", "knight")["game"]
    assert (game["description"], game["header_image"], game["steam_error"]) == (
        "A bug's long journey.", "https://cdn.example/100.jpg", "")

    catalog_admin.json("mistpipe", "edit", "knight", "--description", "Our own words.")
    ANSWERS["100"] = details(100, "Steam's new words.", "https://cdn.example/100-v2.jpg")
    game = catalog_admin.json("mistpipe", "resync-steam", "knight")["game"]
    assert game["description"] == "Our own words."  # edited by hand: never overwritten
    assert game["header_image"] == "https://cdn.example/100-v2.jpg"  # not edited: follows Steam
    assert game["overrides"] == ["description"]


@pytest.mark.parametrize("app, answer, says", [
    (200, {"200": {"success": False}}, "success: false"),
    (300, b"<html>Service Unavailable</html>", "not JSON"),
    (400, "slow", "could not reach"),
])
def test_a_failing_store_leaves_the_catalog_as_it_was(catalog_admin: Person, app, answer, says) -> None:
    slug = f"game{app}"
    ANSWERS[str(app)] = details(app, "First words.", "https://cdn.example/first.jpg")
    catalog_admin.run("mistpipe", "new-game", slug, "--title", slug)
    catalog_admin.json("mistpipe", "edit", slug, "--steam-app-id", str(app))
    catalog_admin.json("mistpipe", "resync-steam", slug)
    ANSWERS[str(app)] = answer
    status = catalog_admin.json("mistpipe", "resync-steam", slug)
    assert status["result"]["synced"] is False and says in status["result"]["error"]
    game = status["game"]
    assert (game["description"], game["header_image"]) == ("First words.", "https://cdn.example/first.jpg")
    assert says in game["steam_error"]
    listed = catalog_admin.run("mistpipe", "ls", slug).stdout
    assert "Steam details not fetched" in listed and says in listed and f"mistpipe resync-steam {slug}" in listed


def test_resync_needs_an_app_id(catalog_admin: Person) -> None:
    catalog_admin.run("mistpipe", "new-game", "nosteam", "--title", "No Steam")
    result = catalog_admin.run("mistpipe", "resync-steam", "nosteam", check=False)
    assert result.returncode != 0 and "no Steam app id" in result.stderr
