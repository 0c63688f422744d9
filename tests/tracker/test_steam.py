"""Reading the Steam store's appdetails answer: the real format, and every way it can disappoint."""

from __future__ import annotations

import json

import pytest

from tracker.jobs.steam import SteamDetails, SteamError, parse_appdetails

pytestmark = pytest.mark.same_on_every_backend  # the Steam client against a fake store

REAL = {"367520": {"success": True, "data": {
    "type": "game", "name": "Hollow Knight", "steam_appid": 367520,
    "short_description": "Forge your own path in Hollow Knight! ",
    "header_image": "https://shared.cdn.example/store_item_assets/steam/apps/367520/header.jpg?t=1",
}}}


def test_a_real_answer_gives_description_and_image() -> None:
    assert parse_appdetails(367520, json.dumps(REAL).encode()) == SteamDetails(
        "Forge your own path in Hollow Knight!", "https://shared.cdn.example/store_item_assets/steam/apps/367520/header.jpg?t=1")


@pytest.mark.parametrize("body, says", [
    (b'{"367520": {"success": false}}', "success: false"),
    (b"<html>Service Unavailable</html>", "not JSON"),
    (b"[]", "not in the appdetails format"),
    (b'{"1": {"success": true, "data": {}}}', "not in the appdetails format"),
    (b'{"367520": {"success": true}}', "has no data"),
    (b'{"367520": {"success": true, "data": {"short_description": 5}}}', "malformed fields"),
    (b'{"367520": {"success": true, "data": {"header_image": "javascript:alert(1)"}}}', "not a web address"),
])
def test_disappointing_answers_are_steam_errors(body, says) -> None:
    with pytest.raises(SteamError, match=says):
        parse_appdetails(367520, body)
