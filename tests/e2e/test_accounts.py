"""The admin manages accounts: list, change a password, disable; sessions end with them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

from tests import backends
from tests.e2e.conftest import BIN, Person, Server, start_server
from tests.e2e.test_faults import http, one_line_error


def test_admin_lists_accounts(admin: Person, friend: Person) -> None:
    users = {u["name"]: u for u in admin.json("mistpipe", "user", "ls")["users"]}
    assert users["admin"]["admin"] is True
    name = friend.session()["user"]
    assert users[name] == {**users[name], "admin": False, "disabled": False}


def test_a_new_password_ends_the_old_sessions_at_once(server: Server, admin: Person, friend: Person) -> None:
    name, old_refresh = friend.session()["user"], friend.session()["refresh_token"]
    assert friend.json("mist", "ls")["games"] is not None
    admin.run("mistpipe", "user", "passwd", name, env={"MIST_PASSWORD": "a-brand-new-one"})
    # The friend's access token has minutes left, but the old client stops now, and says how to go on.
    one_line_error(friend.run("mist", "ls", check=False), "session was ended", f"mist login {server.url} --user {name}")
    status, _ = http("POST", f"{server.url}/api/refresh", json.dumps({"refresh_token": old_refresh}).encode())
    assert status == 401
    one_line_error(friend.run("mist", "login", server.url, "--user", name, check=False), "wrong user name or password")
    friend.run("mist", "login", server.url, "--user", name, env={"MIST_PASSWORD": "a-brand-new-one"})
    assert friend.json("mist", "ls")["games"] is not None


def test_a_disabled_account_is_told_so_and_can_be_enabled_again(server: Server, admin: Person, friend: Person) -> None:
    name, refresh = friend.session()["user"], friend.session()["refresh_token"]
    admin.run("mistpipe", "user", "disable", name)
    assert {u["name"]: u for u in admin.json("mistpipe", "user", "ls")["users"]}[name]["disabled"] is True
    one_line_error(friend.run("mist", "ls", check=False), "is disabled", "ask the admin")
    status, _ = http("POST", f"{server.url}/api/refresh", json.dumps({"refresh_token": refresh}).encode())
    assert status == 403
    one_line_error(friend.run("mist", "login", server.url, "--user", name, check=False), "is disabled")
    said = admin.run("mistpipe", "user", "enable", name).stdout
    assert f"Enabled {name}" in said
    friend.run("mist", "login", server.url, "--user", name)
    assert friend.json("mist", "ls")["games"] is not None


def test_mistpipe_takes_only_an_admin_account_and_says_why(server: Server, friend: Person) -> None:
    name = friend.session()["user"]
    one_line_error(friend.run("mistpipe", "login", server.url, "--user", name, check=False),
                   "not an admin account", f"mist login {server.url} --user {name}")
    assert not (friend.home / "credentials-mistpipe.json").exists()


def test_an_admin_cannot_disable_their_own_account(admin: Person) -> None:
    one_line_error(admin.run("mistpipe", "user", "disable", "admin", check=False), "your own account")


def test_user_commands_refuse_unknown_accounts(admin: Person) -> None:
    one_line_error(admin.run("mistpipe", "user", "disable", "nobody-here", check=False), "no user", "user ls")


def test_repeated_wrong_passwords_are_refused_for_a_while_even_with_the_right_one(server: Server, admin: Person, tmp_path) -> None:
    admin.run("mistpipe", "user", "add", "guessed", env={"MIST_PASSWORD": "the-right-one"})
    for _ in range(10):
        status, body = http("POST", f"{server.url}/api/login", json.dumps({"user": "guessed", "password": "nope"}).encode())
        assert status == 401
    status, body = http("POST", f"{server.url}/api/login", json.dumps({"user": "guessed", "password": "the-right-one"}).encode())
    assert status == 429 and 0 < json.loads(body)["detail"]["retry_after"] <= 900
    person = Person(tmp_path / "home", "the-right-one")
    one_line_error(person.run("mist", "login", server.url, "--user", "guessed", check=False), "too many failed logins", "try again in")


def test_tokens_go_to_the_os_keychain_where_there_is_one(server: Server, admin: Person, tmp_path) -> None:
    keychain = tmp_path / "keychain.json"
    env = {"PYTHON_KEYRING_BACKEND": "tests.e2e.fake_keyring.FileKeychain", "FAKE_KEYCHAIN_FILE": str(keychain),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    admin.run("mistpipe", "user", "add", "keyed", env={"MIST_PASSWORD": "keyed-password"})
    person = Person(tmp_path / "home", "keyed-password")
    said = person.run("mist", "login", server.url, "--user", "keyed", env=env).stderr
    assert "OS keychain" in said
    session = person.session()
    assert session["secrets_in"] == "keychain" and "refresh_token" not in session and "access_token" not in session
    assert "refresh_token" in keychain.read_text()
    assert person.json("mist", "ls", env=env)["games"] is not None
    person.run("mist", "logout", env=env)
    assert json.loads(keychain.read_text()) == {}


def test_without_a_keychain_the_tokens_stay_in_a_private_file(server: Server, friend: Person) -> None:
    session = friend.session()
    assert session["secrets_in"] == "file" and session["refresh_token"]
    assert (friend.home / "credentials-mist.json").stat().st_mode & 0o777 == 0o600


def test_a_start_that_cannot_listen_makes_no_admin_and_reset_password_lets_the_admin_back_in(tmp_path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, **backends.backend_env(data)}
        env.pop("MIST_ADMIN_PASSWORD", None)
        failed = subprocess.run([BIN / "mist-server", "--data", str(data), "--port", str(port)], env=env,
                                capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0 and "cannot listen" in failed.stderr
    assert "password" not in failed.stderr
    server = start_server(data)
    try:
        assert server.sql("SELECT name FROM users") == [("admin",)]  # made by the start that listened
        person = Person(tmp_path / "home", "a-new-admin-password")
        reset = person.run("mist-admin", "reset-password", "admin", "--data", str(data), env=backends.backend_env(data))
        assert "set to MIST_PASSWORD" in reset.stdout
        person.run("mistpipe", "login", server.url, "--user", "admin")
        made = Person(tmp_path / "home2", "")
        printed = made.run("mist-admin", "reset-password", "admin", "--data", str(data),
                           env={**backends.backend_env(data), "MIST_PASSWORD": ""}).stdout
        new_password = printed.splitlines()[1].strip()
        one_line_error(person.run("mistpipe", "ls", check=False), "session was ended", "mistpipe login")
        Person(tmp_path / "home3", new_password).run("mistpipe", "login", server.url, "--user", "admin")
        one_line_error(person.run("mist-admin", "reset-password", "nobody", "--data", str(data), check=False,
                                  env=backends.backend_env(data)), "no account 'nobody'", "admin")
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)
