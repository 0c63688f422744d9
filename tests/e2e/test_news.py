"""News of a published build, end to end: a real mist-server (and its worker) posting to a fake Discord, and
friends' running daemons showing what each of them would download, never a private game to the ungranted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import credentials
from client.api import Api
from shared import manifest
from tests.e2e.conftest import FRIEND_PASSWORD, Person, Server, start_server
from tests.e2e.gametree import MB, make_tree, next_version
from tests.e2e.test_peers import Friend
from tests.fake_discord import TOKEN, FakeDiscord
from tests.waiting import wait_until
from tracker.jobs.discord_webhook import ENV
from tracker.notify import size_text


@pytest.fixture(scope="module")
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, discord: FakeDiscord) -> Iterator[Server]:
    """This module's mist-server posts to the fake Discord (conftest's admin logs in here)."""
    srv = start_server(tmp_path_factory.mktemp("news-server"), {ENV: discord.url})
    yield srv
    srv.process.terminate()
    srv.process.wait(timeout=10)


def new_friend(server: Server, admin: Person, home: Path, name: str) -> Friend:
    admin.run("mistpipe", "user", "add", name, env={"MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(home / name, FRIEND_PASSWORD)
    person.run("mist", "login", server.url, "--user", name)
    return Friend(person, name)


def stored(server: Server, admin: Person, game: str, version: str) -> tuple[set[str], int]:
    """A build's chunks and the stored bytes of them all, read from the tracker and the store directly."""

    async def fetch() -> bytes:
        async with Api(credentials.load(admin.home, "mistpipe"), lambda c: None) as api:
            return (await api.manifest(game, version)).data

    chunks = set(manifest.parse(asyncio.run(fetch())).chunk_sizes())
    return chunks, sum(server.store_size(h) for h in chunks)


def planned(admin: Person, game: str, version: str, held: str) -> int:
    """What the tracker's planner sends a friend holding `held` of the game to reach `version` (patches included)."""

    async def ask() -> int:
        async with Api(credentials.load(admin.home, "mistpipe"), lambda c: None) as api:
            target = manifest.parse((await api.manifest(game, version)).data)
            have = manifest.parse((await api.manifest(game, held)).data).digest()
            plan = await api.call("POST", f"/api/games/{game}/builds/{version}/plan",
                                  json={"have": [have], "write": [f.path for f in target.files]})
            return int(sum(plan["bytes"].values()))

    return asyncio.run(ask())


def news_of(friend: Friend, count: int) -> list[dict]:
    """The friend's news, from its daemon's local API as `mist status` reads it, once it has `count` items."""
    return wait_until(lambda: len(news := friend.local("/api/status")["news"]) >= count and news,
                      lambda: f"{friend.name}'s daemon to hear {count} news; it heard {friend.local('/api/status')['news']}",
                      30, 0.1)


def test_a_push_is_posted_to_discord_and_each_online_friend_hears_its_own_size(
    server: Server, admin: Person, discord: FakeDiscord, tmp_path: Path
) -> None:
    v10 = make_tree(tmp_path / "hollow-1.0", seed=91, small_files=30, large=(2 * MB, 1 * MB))
    admin.run("mistpipe", "new-game", "hollow", "--title", "Hollow Knight")
    admin.json("mistpipe", "push", "hollow", str(v10), "--version", "1.0")
    secret = make_tree(tmp_path / "vault-1", seed=92, small_files=30, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "vault", "--title", "Vault", "--private")
    admin.json("mistpipe", "push", "vault", str(secret), "--version", "1")
    (first,) = discord.wait_for(1)  # the first build of the public game; never the private one
    assert first.body["content"].startswith("Hollow Knight 1.0 is out, ") and first.body["content"].endswith(" to install")

    keeper, outsider = (new_friend(server, admin, tmp_path, name) for name in ("keeper", "outsider"))
    admin.run("mistpipe", "grant", "keeper", "vault")
    keeper.json("install", "hollow", "--dir", str(tmp_path / "keeper-hollow"))
    keeper.json("install", "vault", "--dir", str(tmp_path / "keeper-vault"))
    outsider.json("install", "hollow", "--dir", str(tmp_path / "outsider-hollow"))
    for friend in (keeper, outsider):
        friend.start_daemon()
    daemons = [f.daemon for f in (keeper, outsider)]
    try:
        discord.script()
        admin.json("mistpipe", "push", "vault", str(next_version(secret, tmp_path / "vault-2", seed=93)), "--version", "2")
        (vault_news,) = news_of(keeper, 1)  # the vault is announced (and would have been queued for Discord) first
        admin.json("mistpipe", "push", "hollow", str(next_version(v10, tmp_path / "hollow-1.1", seed=94)), "--version", "1.1")

        old, _ = stored(server, admin, "hollow", "1.0")
        new, install = stored(server, admin, "hollow", "1.1")
        by_chunks = sum(server.store_size(h) for h in new - old)
        hollow_news = news_of(keeper, 2)[1]
        update = hollow_news["bytes"]
        assert (hollow_news["game"], hollow_news["version"], hollow_news["update"]) == ("hollow", "1.1", True)
        assert hollow_news["text"] == f"Hollow Knight 1.1 is out, {size_text(update)} update"
        # The news waited for the worker's patches: it is what the planner sends (a plan asked now may only be
        # smaller, by quick patches it makes on the spot), and less than the new chunks alone.
        assert planned(admin, "hollow", "1.1", "1.0") <= update < by_chunks and 0 < update < install / 2
        (post,) = discord.wait_for(1)
        assert post.body["content"] == (f"Hollow Knight 1.1 is out, {size_text(update)} update from 1.0, "
                                        f"{size_text(install)} to install")

        vault_old, _ = stored(server, admin, "vault", "1")
        vault_new, _ = stored(server, admin, "vault", "2")
        assert (vault_news["game"], vault_news["version"]) == ("vault", "2")
        assert planned(admin, "vault", "2", "1") <= vault_news["bytes"] < sum(server.store_size(h) for h in vault_new - vault_old)
        assert [n["game"] for n in news_of(outsider, 1)] == ["hollow"]  # the vault's news came first, to keeper only

        shown = keeper.json("status")
        assert shown["news"] == news_of(keeper, 2)
        assert list(shown) == ["pid", "since", "connected", "peer_id", "tracker_error", "sharing", "upload_cap_now",
                               "download_cap_now", "builds_shared", "bytes_uploaded", "peers", "news", "downloads",
                               "app_pages", "running"]
        status = keeper.person.run("mist", "status").stdout
        assert "News:" in status and f"Hollow Knight 1.1 is out, {size_text(update)} update" in status
    finally:
        for friend in (keeper, outsider):
            friend.stop_daemon()
    said = daemons[0].stderr.read() if daemons[0] and daemons[0].stderr else ""
    assert f"news: Hollow Knight 1.1 is out, {size_text(update)} update" in said
    assert [p.body["content"].split(" is out")[0] for p in discord.posts] == ["Hollow Knight 1.1"]  # the vault never
    assert all(TOKEN in p.path for p in discord.posts)


def test_a_post_that_does_not_go_out_is_in_the_server_log_and_in_mistpipe_ls(
    server: Server, admin: Person, discord: FakeDiscord, tmp_path: Path
) -> None:
    from tests.fake_discord import Reply

    tree = make_tree(tmp_path / "lost-1", seed=95, small_files=5, large=(MB // 2,))
    admin.run("mistpipe", "new-game", "lost", "--title", "Lost Signal")
    discord.script(Reply(404))  # the webhook was deleted in Discord: not retried
    admin.json("mistpipe", "push", "lost", str(tree), "--version", "1")
    discord.wait_for(1)
    line = server.wait_for_log("not posted to Discord")
    assert "mist.jobs" in line and "404" in line  # the worker's own line, relayed to the server's terminal
    wait_until(lambda: "Discord: not posted" in (listing := admin.run("mistpipe", "ls", "lost").stdout) and listing,
               "`mistpipe ls` to say the news was not posted to Discord", 30, 0.1)
    assert admin.json("mistpipe", "ls", "lost")["games"][0]["builds"][0]["news_status"].startswith("not posted: ")
