"""The admin site in a real browser (headless Debian Chromium) against a real `mist-server`, with the real
`mistpipe` and `mist`: the issue's list, in the order an admin would do it, then screenshots of the pages
with the data this made (docs/screenshots/admin-*.png).

The steps share one server and one signed-in page, so the module's tests run in order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e.browser import chromium
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, Person, Server, start_server
from tests.e2e.gametree import MB, make_tree, next_version
from tracker.admin.formatting import human_bytes as human

pytestmark = pytest.mark.slow
# Where the pictures go: the README's come from a run with MIST_SCREENSHOTS=docs/screenshots; by default they are
# still taken (the pages must render), into the test's own folder, so a run leaves the checkout as it was.
SCREENSHOTS = os.environ.get("MIST_SCREENSHOTS", "")
WAIT_MS = 30_000  # for the worker's jobs on a loaded machine; every wait ends as soon as its condition holds
STEAM_ANSWERS: list[object] = []  # the fake store's next answers, in order; then a success


class FakeSteam(BaseHTTPRequestHandler):
    """Steam's appdetails in its real format: the first call fails (a store outage), later ones succeed."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        app = parse_qs(urlparse(self.path).query)["appids"][0]
        answer = STEAM_ANSWERS.pop(0) if STEAM_ANSWERS else {app: {"success": True, "data": {
            "short_description": "Forge your own path in an epic action adventure through a vast ruined kingdom.",
            "header_image": ""}}}
        if answer == 500:
            self.send_response(500)
            self.end_headers()
            return
        body = json.dumps(answer).encode()
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
def site(steam, tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("admin-site"),
                          {"MIST_STEAM_URL": steam, "MIST_STEAM_TIMEOUT": "5", "MIST_GC_GRACE_SECONDS": "0"})
    yield server
    server.process.terminate()
    server.process.wait(timeout=30)


@pytest.fixture(scope="module")
def pusher(site: Server, tmp_path_factory) -> Person:
    person = Person(tmp_path_factory.mktemp("admin-terminal"), ADMIN_PASSWORD)
    person.run("mistpipe", "login", site.url, "--user", "admin")
    return person


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("builds")
    first = make_tree(root / "1.0", seed=16, small_files=40, large=(2 * MB, 1 * MB))
    return first, next_version(first, root / "1.1", seed=17)


@pytest.fixture(scope="module")
def browser():
    with chromium() as found:
        yield found


@pytest.fixture(scope="module")
def page(browser, site: Server):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=site.url)
    tab = context.new_page()
    tab.goto("/admin/")
    tab.get_by_label("User name").fill("admin")
    tab.get_by_label("Password").fill(ADMIN_PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(re.compile(r"/admin/$"))
    yield tab
    context.close()


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def test_creating_a_game_shows_errors_beside_the_fields_then_the_game(page) -> None:
    page.goto("/admin/games")
    page.get_by_label("Short name").fill("Hollow Knight")
    page.get_by_label("Title").fill("Hollow Knight")
    page.get_by_role("button", name="Create the game").click()
    expect()(page.locator("#e-slug")).to_contain_text("must be lowercase letters, digits and '-'")
    expect()(page.get_by_label("Title")).to_have_value("Hollow Knight")  # what was typed stays
    page.get_by_label("Short name").fill("hollow")
    page.get_by_role("button", name="Create the game").click()
    page.wait_for_url(re.compile(r"/admin/games/hollow"))
    expect()(page.get_by_role("status")).to_contain_text("Created the game Hollow Knight.")
    expect()(page.locator("#push-command")).to_contain_text("mistpipe push hollow ./hollow-1.0 --version 1.0")


def test_builds_pushed_with_mistpipe_appear_with_their_dedup_figures(page, pusher: Person, builds) -> None:
    first, second = builds
    pusher.run("mistpipe", "push", "hollow", str(first), "--version", "1.0", "--wait", "--notes", "The first build.")
    pusher.run("mistpipe", "push", "hollow", str(second), "--version", "1.1", "--wait")
    page.goto("/admin/games/hollow")
    newest, oldest = page.locator("#build-1\\.1 .dedup"), page.locator("#build-1\\.0 .dedup")
    expect()(oldest).to_contain_text("(0% already stored)")  # the first build brought everything
    text = newest.inner_text()
    reused = int(re.search(r"\((\d+)% already stored\)", text).group(1))
    assert 50 <= reused < 100, text  # 1.1 changed a few files of 1.0: most of its chunks were there already
    expect()(page.locator("#build-1\\.1")).to_contain_text("from 1.0:")  # the patch job made patches into it
    expect()(page.locator("#push-command")).to_contain_text("--version 1.2")
    page.get_by_label("Release notes of 1.1").fill("Faster loading; the bridge in the ruins no longer collapses.")
    page.get_by_role("button", name="Save 1.1").click()
    expect()(page.get_by_role("status")).to_contain_text("Saved build 1.1.")
    expect()(page.locator("#notes-1\\.1 summary")).to_contain_text("Faster loading")


def test_an_account_made_here_signs_in_with_mist(page, site: Server, tmp_path) -> None:
    page.goto("/admin/users")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Create the account").click()
    page.wait_for_url(re.compile(r"/admin/users/alice"))
    alice = Person(tmp_path / "alice", "alice-password")
    alice.run("mist", "login", site.url, "--user", "alice")
    assert [g["slug"] for g in alice.json("mist", "ls")["games"]] == ["hollow"]


def test_a_plain_user_is_refused_in_the_browser(browser, site: Server) -> None:
    context = browser.new_context(base_url=site.url)
    tab = context.new_page()
    tab.goto("/admin")
    tab.get_by_label("User name").fill("alice")
    tab.get_by_label("Password").fill("alice-password")
    tab.get_by_role("button", name="Sign in").click()
    expect()(tab.get_by_role("alert")).to_contain_text("alice cannot use the admin site: the admin site is for admin accounts only")
    tab.goto("/admin/games")  # no session was made
    expect()(tab.get_by_role("button", name="Sign in")).to_be_visible()
    context.close()


def test_a_form_on_another_site_changes_nothing(page, site: Server) -> None:
    """Another site's page posts to the admin site from the signed-in admin's browser (a CSRF attempt)."""
    target = f"{site.url}/admin/games"

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            body = (f'<form method="post" action="{target}"><input name="slug" value="planted">'
                    '<input name="title" value="Planted"><input name="csrf" value="guessed">'
                    '<button>Win a prize</button></form>').encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.2", 0), Attacker)  # another origin: another address and port
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.2:{other.server_address[1]}/")
        page.get_by_role("button", name="Win a prize").click()
        page.wait_for_load_state()
        assert "/admin/games/planted" not in page.url
    finally:
        other.shutdown()
    page.goto("/admin/games/planted")
    expect()(page.get_by_role("heading", name="Not found")).to_be_visible()  # nothing was created
    page.goto("/admin/games")
    expect()(page.get_by_role("heading", name="Games", exact=True)).to_be_visible()  # and the session lives on


def test_an_invited_friend_picks_a_password_and_signs_in(page, browser, site: Server, pusher: Person, tmp_path) -> None:
    page.goto("/admin/invitations")
    page.get_by_label("Their user name").fill("bob")
    page.get_by_role("button", name="Make the link").click()
    link = page.locator("#invite-link").inner_text().strip()
    assert re.fullmatch(re.escape(site.url) + r"/admin/join/[\w-]{40,}", link), link
    stranger = browser.new_context(base_url=site.url)  # the friend's browser: no admin session
    friend = stranger.new_page()
    friend.goto(link)
    friend.get_by_label("Password", exact=True).fill("bob-password-1")
    friend.get_by_label("The same password again").fill("bob-password-2")
    friend.get_by_role("button", name="Create my account").click()
    expect()(friend.locator("#e-repeat")).to_contain_text("the two passwords differ")
    friend.get_by_label("Password", exact=True).fill("bob-password-1")
    friend.get_by_label("The same password again").fill("bob-password-1")
    friend.get_by_role("button", name="Create my account").click()
    expect()(friend.get_by_role("heading", name="You are in, bob")).to_be_visible()
    fingerprint = friend.locator("#fingerprint").inner_text().strip()
    assert friend.locator("#tracker-url").inner_text().strip() == site.url
    assert friend.get_by_role("link", name="Get the Mist app").get_attribute("href") == "/get"
    bob = Person(tmp_path / "bob", "bob-password-1")
    said = bob.run("mist", "login", site.url, "--user", "bob", "--fingerprint", fingerprint).stderr
    assert "as expected" in said
    friend.goto(link)  # one time only
    expect()(friend.locator(".alert")).to_contain_text("was used already")
    made = json.loads(pusher.run("mistpipe", "invite", "dave", "--days", "3", "--json").stdout)  # the same from a terminal
    friend.goto(made["url"])
    expect()(friend.get_by_role("heading", name="Welcome to Mist, dave")).to_be_visible()
    stranger.close()


def test_a_private_game_granted_here_is_what_the_friend_sees(page, pusher: Person, site: Server, builds, tmp_path) -> None:
    pusher.run("mistpipe", "new-game", "silksong", "--title", "Silksong", "--private")
    pusher.run("mistpipe", "push", "silksong", str(builds[0]), "--version", "0.9")
    bob = Person(tmp_path / "bob", "bob-password-1")
    bob.run("mist", "login", site.url, "--user", "bob")
    assert "silksong" not in [g["slug"] for g in bob.json("mist", "ls")["games"]]
    page.goto("/admin/games/silksong")
    page.get_by_label("Grant to").select_option("bob")
    page.get_by_role("button", name="Grant", exact=True).click()
    expect()(page.get_by_role("status")).to_contain_text("Granted bob the game.")
    assert "silksong" in [g["slug"] for g in bob.json("mist", "ls")["games"]]


def test_disabling_a_user_stops_their_sign_in(page, site: Server, tmp_path) -> None:
    page.goto("/admin/users/alice")
    page.once("dialog", lambda dialog: dialog.accept())  # "Disable alice? ..."
    page.get_by_role("button", name="Disable").click()
    expect()(page.get_by_role("status")).to_contain_text("Disabled alice")
    alice = Person(tmp_path / "alice-again", "alice-password")
    refused = alice.run("mist", "login", site.url, "--user", "alice", check=False)
    assert refused.returncode != 0


def test_a_failed_job_is_shown_with_its_error_and_retried(page) -> None:
    STEAM_ANSWERS.append(500)  # the store is down for the first fetch
    page.goto("/admin/games/hollow")
    page.get_by_label("Steam app id").fill("367520")
    page.get_by_role("button", name="Save", exact=True).click()
    expect()(page.get_by_role("status")).to_contain_text("Fetching the Steam details")
    page.goto("/admin/jobs")
    failed = page.locator("tr.job-row", has_text="sync_steam").filter(has_text="failed").first
    expect()(failed).to_contain_text("could not reach the Steam store", timeout=WAIT_MS)  # live, over SSE
    failed.get_by_role("button", name="Retry").click()
    expect()(page.get_by_role("status")).to_contain_text("Queued the job again")
    retried = page.locator("tr.job-row", has_text="retry of")
    expect()(retried).to_contain_text("done", timeout=WAIT_MS)
    page.goto("/admin/games/hollow")
    expect()(page.locator("#f-description")).to_have_value(re.compile("Forge your own path"))


def test_a_garbage_collection_frees_what_an_interrupted_push_left(page, pusher: Person, builds, tmp_path) -> None:
    broken = next_version(builds[1], tmp_path / "1.2", seed=18)
    killed = pusher.run("mistpipe", "push", "hollow", str(broken), "--version", "1.2", check=False,
                        env={"MIST_CRASH_AT": "pushed-batch"})
    assert killed.returncode != 0  # its chunks are in the store, but no build names them
    page.goto("/admin/storage")
    would = page.locator("#gc-would").inner_text()
    leftover = int(re.search(r"would remove (\d+) object", would).group(1))
    assert leftover > 0, would
    before = int(page.locator("#object-count").inner_text())
    page.get_by_role("button", name="Collect garbage now").click()
    expect()(page.get_by_role("status")).to_contain_text("The garbage collection runs now")
    page.goto("/admin/jobs")
    expect()(page.locator("tr.job-row", has_text="collect_garbage").first).to_contain_text("done", timeout=WAIT_MS)
    page.goto("/admin/storage")
    assert int(page.locator("#object-count").inner_text()) == before - leftover
    expect()(page.locator("#gc-would")).to_contain_text("would remove 0 objects")
    page.get_by_role("button", name="Scrub now").click()
    expect()(page.get_by_role("status")).to_contain_text("The scrub runs now")
    page.goto("/admin/jobs")
    expect()(page.locator("tr.job-row", has_text="scrub_store").first).to_contain_text("done", timeout=WAIT_MS)
    page.goto("/admin/storage")
    expect()(page.locator("#scrub-last")).to_contain_text(f"checked {before - leftover} objects, 0 damaged")


def test_friends_downloads_show_where_their_bytes_came_from(page, site: Server, pusher: Person, tmp_path) -> None:
    """Real installs and an update, with bob's daemon online; then the screenshots of the pages."""
    pusher.run("mistpipe", "user", "add", "carol", env={"MIST_PASSWORD": "carol-password"})
    loopback = {"MIST_PEER_LOOPBACK": "1"}
    bob = Person(tmp_path / "bob", "bob-password-1")
    bob.run("mist", "login", site.url, "--user", "bob")
    bob.run("mist", "install", "hollow", "--dir", str(tmp_path / "bob-hollow"), "--version", "1.0", env=loopback)
    bob.run("mist", "update", "hollow", env=loopback)
    carol = Person(tmp_path / "carol", "carol-password")
    carol.run("mist", "login", site.url, "--user", "carol")
    daemon = start_daemon(bob, loopback)
    try:
        page.goto("/admin/activity")
        expect()(page.locator(".friend-card", has_text="bob")).to_contain_text("sharing", timeout=WAIT_MS)
        got = carol.json("mist", "install", "hollow", "--dir", str(tmp_path / "carol-hollow"), env=loopback)
        page.goto("/admin/activity?user=carol")
        row = page.locator("tr.event[data-kind=install]", has_text="carol")
        expect()(row).to_contain_text("hollow 1.1")
        # What the log shows is what the client reported (on a build this small the seeder finishes
        # before a friend's link is up, so here it is all the seeder's).
        expect()(row).to_contain_text(human(got["bytes_from_seeder"]))
        page.goto("/admin/")
        expect()(page.locator("figcaption").first).to_contain_text("between friends")
        shoot(page, "/admin/", "dashboard", tmp_path)
        shoot(page, "/admin/games/hollow", "game", tmp_path)
        shoot(page, "/admin/users", "users", tmp_path)
        shoot(page, "/admin/activity", "activity", tmp_path)
        shoot(page, "/admin/jobs", "jobs", tmp_path)
        shoot(page, "/admin/storage", "storage", tmp_path)
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)


def start_daemon(person: Person, env: dict[str, str]) -> subprocess.Popen:
    """`mist daemon`, once its local API answers (the admin page then waits for it to show as online)."""
    daemon = subprocess.Popen([BIN / "mist", "daemon", "--port", "0"], env={**os.environ, "MIST_HOME": str(person.home), **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert daemon.stderr is not None
    line = daemon.stderr.readline()
    assert "local API at http://127.0.0.1:" in line, line
    threading.Thread(target=daemon.stderr.read, daemon=True).start()  # keep its pipe drained
    return daemon


def shoot(page, path: str, name: str, folder: Path) -> None:
    page.goto(path)
    target = Path(SCREENSHOTS) if SCREENSHOTS else folder
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"admin-{name}.png"), full_page=True)
    assert (target / f"admin-{name}.png").stat().st_size > 10_000  # a page was drawn, not a blank
