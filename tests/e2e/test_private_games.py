"""Private games: invisible (404, not 403) to everyone without a grant; a grant shows them, a revoke stops new tickets."""

from __future__ import annotations

import json

from tests.e2e.conftest import Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_faults import http, one_line_error, token


def test_a_private_game_is_invisible_until_granted_and_revoking_stops_new_tickets(
    server: Server, admin: Person, friend: Person, tmp_path
) -> None:
    tree = make_tree(tmp_path / "secret", seed=61, small_files=10, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "secret", "--title", "Secret", "--private")
    admin.json("mistpipe", "push", "secret", str(tree), "--version", "1")
    name = friend.session()["user"]
    access = token(server, name, friend.password)
    bearer = {"Authorization": f"Bearer {access}"}

    assert "secret" not in [g["slug"] for g in friend.json("mist", "ls")["games"]]
    one_line_error(friend.run("mist", "install", "secret", "--dir", str(tmp_path / "g"), check=False), "no game 'secret'")
    for method, path in (("GET", "/api/games/secret"), ("GET", "/api/games/secret/builds/1/manifest"),
                         ("POST", "/api/games/secret/builds/1/ticket")):
        status, body = http(method, f"{server.url}{path}", b"" if method == "POST" else None, bearer)
        nosuch_status, nosuch_body = http(method, f"{server.url}{path.replace('secret', 'nosuch')}", b"" if method == "POST" else None, bearer)
        assert status == nosuch_status == 404  # exactly like a game that does not exist
        assert json.loads(body)["error"].replace("secret", "X") == json.loads(nosuch_body)["error"].replace("nosuch", "X")

    admin.run("mistpipe", "grant", name, "secret")
    listed = {g["slug"]: g for g in friend.json("mist", "ls")["games"]}
    assert listed["secret"]["private"] is True
    friend.json("mist", "install", "secret", "--dir", str(tmp_path / "g"))
    assert_same_tree(tree, tmp_path / "g")

    admin.run("mistpipe", "revoke", name, "secret")
    status, _ = http("POST", f"{server.url}/api/games/secret/builds/1/ticket", b"", bearer)
    assert status == 404
    assert "secret" not in [g["slug"] for g in friend.json("mist", "ls")["games"]]
    assert "secret" in [g["slug"] for g in admin.json("mistpipe", "ls")["games"]]


def test_grants_name_real_accounts_and_games(admin: Person, friend: Person) -> None:
    one_line_error(admin.run("mistpipe", "grant", "nobody-at-all", "hollow-nope", check=False), "no user")
    one_line_error(admin.run("mistpipe", "grant", friend.session()["user"], "no-such-game", check=False), "no game")
