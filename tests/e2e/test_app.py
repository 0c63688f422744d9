"""The friends' app end to end: headless Chromium (Playwright) on the pages of a real `mist daemon`, which talks
to a real `mist-server`; header images from a local stand-in for the Steam CDN. A friend signs in, installs with
live progress, pauses and resumes, updates, rolls back, repairs, uninstalls, changes a cap that `mist status`
then shows, hears of a new build, and the daemon refuses what a foreign page could send."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import chromium
from tests.e2e.friend_app import Daemon, make_art
from tests.e2e.conftest import BIN, FRIEND_PASSWORD, Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree, next_version
from tests.e2e.test_key_rotation import restart, rotate
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
SCREENSHOTS = os.environ.get("MIST_SCREENSHOTS", "")  # a folder: the README's pictures are taken from this run
LIBRARY = [("hollow", "Hollow Knight", ("#1d2b53", "#7e2553")), ("celeste", "Celeste", ("#ff77a8", "#29adff")),
           ("hades", "Hades", ("#5a0f0f", "#e4572e")), ("stardew", "Stardew Valley", ("#2e7d32", "#a5d6a7")),
           ("cells", "Dead Cells", ("#102a43", "#f0b429")), ("breach", "Into the Breach", ("#263238", "#ff7043"))]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def art_cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Header images over HTTP with their real content type, as the Steam CDN serves them."""
    folder = tmp_path_factory.mktemp("cdn")
    for _, title, colours in LIBRARY:
        make_art(folder, title, colours)
    handler = functools.partial(_Quiet, directory=str(folder))
    cdn = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=cdn.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{cdn.server_address[1]}"
    cdn.shutdown()


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trees")
    v10 = make_tree(root / "hollow-1.0", seed=21, small_files=40, large=(5 * MB, 1 * MB))
    v11 = next_version(v10, root / "hollow-1.1", seed=22)
    (v11 / "bin" / "play.sh").write_text('#!/bin/sh\necho "$@" > played.txt\nwhile [ ! -e stop-playing ]; do sleep 0.05; done\n')
    (v11 / "bin" / "play.sh").chmod(0o755)  # a game that runs until the test tells it to stop
    return {"1.0": v10, "1.1": v11,
            "celeste": make_tree(root / "celeste-1.0", seed=23, small_files=30, large=(2 * MB,))}


@pytest.fixture(scope="module")
def library(server: Server, admin: Person, art_cdn: str, trees: dict[str, Path], tmp_path_factory) -> None:
    """Six games with header images and descriptions; Hollow Knight has two versions, Celeste one."""
    small = tmp_path_factory.mktemp("small")
    for slug, title, _ in LIBRARY:
        admin.run("mistpipe", "new-game", slug, "--title", title)
        admin.run("mistpipe", "edit", slug, "--header-image", f"{art_cdn}/{title.lower().replace(' ', '-')}.jpg",
                  "--description", f"{title}: a game your friends keep here for you.")
        if slug not in ("hollow", "celeste"):
            (small / slug).mkdir()
            (small / slug / "game.bin").write_bytes(slug.encode() * 1000)
            admin.run("mistpipe", "push", slug, str(small / slug), "--version", "1.0")
    admin.run("mistpipe", "push", "hollow", str(trees["1.0"]), "--version", "1.0", "--notes", "The first release.")
    admin.run("mistpipe", "push", "hollow", str(trees["1.1"]), "--version", "1.1", "--wait",
              "--notes", "Faster loading.\nA new level.", "--launch", "bin/play.sh --windowed")
    admin.run("mistpipe", "push", "celeste", str(trees["celeste"]), "--version", "1.0")


@pytest.fixture(scope="module")
def alice(server: Server, admin: Person, library: None, tmp_path_factory) -> Iterator[Daemon]:
    """A friend who never used a terminal: the daemon starts signed out. A stand-in notify-send records the
    desktop notifications it shows."""
    admin.run("mistpipe", "user", "add", "alice", env={"MIST_PASSWORD": FRIEND_PASSWORD})
    home = tmp_path_factory.mktemp("alice")
    person = Person(home / "home", FRIEND_PASSWORD)
    person.home.mkdir()
    tools = home / "bin"
    tools.mkdir()
    (tools / "notify-send").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {home / "notifications.txt"}\n')
    (tools / "notify-send").chmod(0o755)
    person.run("mist", "settings", "--games-folder", str(home / "Games"))
    daemon = Daemon.start(person, {"PATH": f"{tools}:{os.environ['PATH']}"})
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def page(alice: Daemon) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1100, "height": 760})
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        yield tab
        context.close()


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def record_events(page: Any) -> None:
    """The test's own listener on the page's event stream: every finished job and progress sample."""
    page.evaluate("""() => {
        window.__seen = {progress: [], finished: []};
        const stream = new EventSource('/api/events');
        stream.addEventListener('progress', e => window.__seen.progress.push(JSON.parse(e.data)));
        stream.addEventListener('finished', e => window.__seen.finished.push(JSON.parse(e.data)));
        window.__marker = 'the same page';
    }""")


def finished(daemon: Daemon, game: str, op: str, seen: int = 0) -> dict:
    """The `seen`-th (from 0) finished job of this kind, as the daemon lists them (newest first)."""
    def look() -> dict | None:
        done = [j for j in reversed(daemon.call("/api/downloads")[1]["finished"]) if j["game"] == game and j["op"] == op]
        return done[seen] if len(done) > seen else None

    return wait_until(look, f"the {op} of {game} to finish", 120, 0.1)


def test_signing_in_shows_a_clear_screen_for_each_failure_then_the_library(page: Any, alice: Daemon, server: Server) -> None:
    page.goto(alice.one_time_url())
    assert page.url.endswith("/signin")  # signed out: the sign-in screen first
    page.fill("#url", "http://127.0.0.1:9")  # nothing listens there
    page.fill("#user", "alice")
    page.fill("#password", FRIEND_PASSWORD)
    page.click("button.primary")
    assert page.get_attribute("#signin-error", "data-kind") == "unreachable"
    assert "Cannot reach the server" in page.inner_text("#signin-error")
    page.fill("#url", server.url)
    page.fill("#password", "not-the-password")
    page.click("button.primary")
    assert page.get_attribute("#signin-error", "data-kind") == "password"
    page.fill("#password", FRIEND_PASSWORD)
    page.fill("#fingerprint", "00:11:22")
    page.click("button.primary")
    assert page.get_attribute("#signin-error", "data-kind") == "fingerprint"
    page.fill("#password", FRIEND_PASSWORD)
    page.fill("#fingerprint", "")
    page.click("button.primary")
    assert page.url.rstrip("/").endswith(alice.url.split("//")[1]) or page.url.endswith("/")
    assert "Signed in. The server's key is" in page.inner_text(".flash")
    titles = page.locator(".game-card .title").all_inner_texts()
    assert sorted(titles) == sorted(title for _, title, _ in LIBRARY)
    wait_until(lambda: page.evaluate("[...document.querySelectorAll('.game-card img')].every(i => i.complete && i.naturalWidth == 460)"),
               "every header image to load from the daemon's cache", 60, 0.1)
    assert page.locator('[data-state-of="hollow"]').inner_text() == "not installed"
    page.fill("#q", "celes")
    page.click("text=Apply")
    assert page.locator(".game-card .title").all_inner_texts() == ["Celeste"]
    page.goto(alice.url + "/")
    shot(page, "library")


def test_the_api_answers_the_library_and_refuses_foreign_pages_even_with_the_token(alice: Daemon, page: Any) -> None:
    status, body = alice.call("/api/games")
    assert status == 200
    assert {g["slug"]: g["state"] for g in body["games"]}["hollow"] == "not installed"
    assert all(set(g) >= {"slug", "title", "state", "installed", "latest"} for g in body["games"])
    port = alice.url.rsplit(":", 1)[1]
    for headers in ({"Host": f"evil.example:{port}"}, {"Host": f"127.0.0.1.nip.io:{port}"},
                    {"Origin": "http://evil.example"}, {"Origin": f"http://localhost:{int(port) + 1}"},
                    {"Sec-Fetch-Site": "cross-site"}):
        status, body = alice.call("/api/games", headers=headers)
        assert 400 <= status < 500 and ("refused" in str(body) or "only at" in str(body)), (headers, status, body)
    assert alice.call("/api/games", token=False)[0] == 401  # no token, no cookie
    assert alice.call("/api/games", headers={"Authorization": "Bearer not-it"}, token=False)[0] == 401
    # The browser's session is a cookie no script can read, sent only from the app's own pages.
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("mist_session", True, "Strict")
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("fetch('/api/games').then(r => r.status)") == 200
    # A one-time address works once.
    fresh = alice.one_time_url()
    other = page.context.browser.new_context()  # another browser profile: cookies of its own
    try:
        tab = other.new_page()
        tab.goto(fresh)
        assert tab.locator(".game-grid").count() == 1  # signed in, in the library
        again = page.context.browser.new_context()
        try:
            second = again.new_page()
            second.goto(fresh)
            assert "Open Mist from your computer" in second.inner_text("h1")
        finally:
            again.close()
    finally:
        other.close()
    status, _ = alice.call("/api/app/open-address", "POST", token=False,
                           headers={"Cookie": f"mist_session={cookie['value']}"})
    assert status == 403  # a browser session cannot mint addresses: only the token from daemon.json


def test_install_shows_the_cost_first_then_live_progress_pause_and_resume(page: Any, alice: Daemon, trees) -> None:
    # Slow enough to pause in the middle: chunks come in batches of up to 4 MiB, each waiting for the cap.
    alice.person.run("mist", "share", "--download-cap", "1500KB")
    wait_until(lambda: alice.call("/api/status")[1]["download_cap_now"] == 1_500_000, "the daemon to read the new cap", 60, 0.1)
    page.goto(alice.url + "/games/hollow")
    page.select_option("#install-version", "1.0")
    page.click("text=Install…")
    estimate = page.inner_text("#estimate")
    assert "Download" in estimate and "Written to disk" in estimate and "Free space" in estimate
    page.click("text=Start install")
    page.goto(alice.url + "/downloads")
    record_events(page)
    row = page.locator(".download-row").first
    wait_until(lambda: 0 < float(row.locator('[data-field="percent"]').inner_text()) < 100, "progress to show, live", 60, 0.1)
    shot(page, "downloads")
    row.locator("text=Pause").click()
    wait_until(lambda: page.locator(".download-row .state").first.inner_text() == "paused", "the row to say paused", 60, 0.1)
    folder = Path(alice.call("/api/downloads")[1]["active"][0]["dir"])
    assert any((folder / ".mist" / "staging").iterdir())  # the work so far is kept for the resume
    assert alice.call("/api/games")[1]["games"][[g["slug"] for g in alice.call("/api/games")[1]["games"]].index("hollow")]["state"] == "paused"
    alice.person.run("mist", "share", "--download-cap", "unlimited")
    page.locator("text=Resume").click()
    done = wait_until(lambda: next((j for j in page.evaluate("window.__seen.finished") if j["game"] == "hollow"), None),
                      "the page to hear the install finish", 120, 0.1)
    assert (done["state"], done["percent"], done["result"]["version"]) == ("done", 100.0, "1.0")
    assert done["result"]["bytes_reused"] > 0  # the resume kept what the first run had verified
    assert any(0 < p["percent"] < 100 for p in page.evaluate("window.__seen.progress"))
    assert page.evaluate("window.__marker") == "the same page"  # all of it live, without a reload
    assert_same_tree(trees["1.0"], folder)
    page.goto(alice.url + "/")
    assert page.locator('[data-state-of="hollow"]').inner_text().startswith("update available")


def test_update_roll_back_repair_and_uninstall_from_the_game_page(page: Any, alice: Daemon, trees) -> None:
    page.goto(alice.url + "/games/hollow")
    page.click("text=Update to 1.1…")
    assert "1.0 → 1.1" in page.inner_text("h1")
    page.click("text=Switch to 1.1")
    assert finished(alice, "hollow", "update")["result"]["version"] == "1.1"
    folder = Path(alice.call("/api/games/hollow")[1]["installed"]["dir"])
    assert_same_tree(trees["1.1"], folder)
    page.goto(alice.url + "/games/hollow")
    assert "Faster loading." in page.inner_text(".versions") and "The first release." in page.inner_text(".versions")
    page.click("button:has-text('Play')")  # the build's launch command, from the install folder
    wait_until(lambda: (folder / "played.txt").exists(), "the game to start", 60, 0.1)
    assert (folder / "played.txt").read_text().strip() == "--windowed"
    page.goto(alice.url + "/games/hollow")
    assert "Playing now" in page.inner_text(".game-head")
    shot(page, "game")
    page.select_option("#switch-version", "1.0")  # while the game runs: the update stages, then waits
    page.click("text=Switch…")
    page.click("text=Switch to 1.0")
    wait_until(lambda: [j["state"] for j in alice.call("/api/downloads")[1]["active"]] == ["waiting"],
               "the roll back to wait for the game to close", 60, 0.1)
    assert_same_tree(trees["1.1"], folder, extra={"played.txt"})  # nothing swapped under the running game
    (folder / "stop-playing").write_text("")
    wait_until(lambda: alice.call("/api/games/hollow")[1]["installed"]["version"] == "1.0", "the roll back to 1.0", 60, 0.1)
    assert alice.call("/api/games/hollow")[1]["played"] > 0
    for name in ("played.txt", "stop-playing"):
        (folder / name).unlink()
    assert_same_tree(trees["1.0"], folder)

    damaged = folder / "data" / "pak0.bin"
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    page.goto(alice.url + "/games/hollow")
    page.click("text=Verify and repair")
    result = finished(alice, "hollow", "repair")["result"]
    assert result["files_bad"] == ["data/pak0.bin"] and result["repaired"]["files_written"] == 1
    assert_same_tree(trees["1.0"], folder)
    page.goto(alice.url + "/downloads")
    assert "1 damaged file found and repaired" in page.inner_text("#finished")

    (folder / "saves").mkdir()
    (folder / "saves" / "slot1.sav").write_text("mine")
    page.goto(alice.url + "/games/hollow")
    page.click("text=Uninstall…")
    page.check("input[name=confirm]")
    page.click("button.danger")
    assert "your own files there were left alone" in page.inner_text(".flash")
    assert page.locator('[data-state-of="hollow"]').inner_text() == "not installed"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["saves", "saves/slot1.sav"]


def test_the_upload_cap_set_in_the_app_is_what_mist_status_shows(page: Any, alice: Daemon) -> None:
    page.goto(alice.url + "/settings")
    page.fill("#upload_cap", "750KB")
    page.fill("#schedule", "23:00-07:00 up=unlimited")
    page.click("text=Save settings")
    assert "Settings saved." in page.inner_text(".flash")
    status = alice.person.json("mist", "status")
    assert status["sharing"]["upload_cap"] == 750_000 and status["sharing"]["schedule"][0]["start"] == "23:00"
    assert "Sharing on" in alice.person.run("mist", "share").stdout and "750 KB/s" in alice.person.run("mist", "share").stdout
    page.fill("#upload_cap", "fast please")
    page.click("text=Save settings")
    assert "a rate must be" in page.inner_text(".flash-error")  # refused, saying what to write; nothing changed
    assert alice.person.json("mist", "status")["sharing"]["upload_cap"] == 750_000


def test_what_the_cli_starts_shows_in_the_app_and_a_new_build_is_a_notification(
    page: Any, alice: Daemon, admin: Person, trees, tmp_path: Path
) -> None:
    target = tmp_path / "celeste"
    cli = subprocess.Popen([BIN / "mist", "install", "celeste", "--dir", str(target), "--json"],
                           env={**os.environ, "MIST_HOME": str(alice.person.home)}, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    wait_until(lambda: "celeste" in str(alice.call("/api/downloads")[1]), "the daemon to queue the CLI's install", 60, 0.1)
    page.goto(alice.url + "/downloads")
    assert "Celeste" in page.inner_text("main")  # running or done: the app shows what the CLI started
    done = finished(alice, "celeste", "install")
    assert done["origin"] == "cli" and done["state"] == "done"
    out, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert '"version": "1.0"' in out
    assert_same_tree(trees["celeste"], target)

    newer = next_version(trees["celeste"], tmp_path / "celeste-1.1", seed=24)
    admin.run("mistpipe", "push", "celeste", str(newer), "--version", "1.1")
    notifications = alice.person.home.parent / "notifications.txt"
    line = wait_until(lambda: next((n for n in notifications.read_text().splitlines() if "Celeste 1.1 is out" in n), ""),
                      "the desktop notification of the new build", 90, 0.1)
    assert "update" in line  # sized for alice, who holds 1.0
    assert "Hollow Knight 1.0 installed" in notifications.read_text()  # downloads started in the app say so too
    page.goto(alice.url + "/notices")
    assert "Celeste 1.1 is out" in page.inner_text("#news")
    page.goto(alice.url + "/")
    state = page.locator('[data-state-of="celeste"]').inner_text()
    assert state.startswith("update available")


def test_the_friends_page_shows_who_is_online_and_sharing(page: Any, alice: Daemon, server: Server, admin: Person,
                                                          tmp_path: Path) -> None:
    admin.run("mistpipe", "user", "add", "bob", env={"MIST_PASSWORD": FRIEND_PASSWORD})
    bob = Person(tmp_path / "bob", FRIEND_PASSWORD)
    bob.run("mist", "login", server.url, "--user", "bob")
    bob_daemon = Daemon.start(bob)
    try:
        wait_until(lambda: any(f["user"] == "bob" and f["sharing"] for f in alice.call("/api/friends")[1]["friends"]),
                   "bob to be online and his announcement of what he shares to arrive", 60, 0.1)
        page.goto(alice.url + "/friends")
        card = page.locator(".friend-card", has_text="bob")
        assert "Online, sharing" in card.inner_text()
        shot(page, "friends")
    finally:
        bob_daemon.stop()
    shutil.rmtree(tmp_path / "bob", ignore_errors=True)


def test_mist_app_without_a_display_says_so_and_opens_the_browser(alice: Daemon, page: Any, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    browser.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([BIN / "mist", "app"], env={**env, "MIST_HOME": str(alice.person.home), "BROWSER": str(browser)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().startswith("No Mist window here: no graphical display here")
    url = opened.read_text()
    assert url.startswith(alice.url + "/open?code=")
    other = page.context.browser.new_context()
    try:
        tab = other.new_page()
        tab.goto(url)
        assert tab.locator(".game-card").count() == len(LIBRARY)  # the address the browser got signs it in
    finally:
        other.close()


def test_mist_app_opens_a_real_window_that_shows_the_library(alice: Daemon, tmp_path: Path) -> None:
    """pywebview (GTK, WebKitGTK) under Xvfb: the window opens the one-time address, signs in by it, and the
    library renders: the screen, compared loosely, shows the app's dark library with its cards and top bar.
    (Counting the daemon's open event streams instead races with streams of closed pages it has not yet
    noticed.)"""
    ready, told = os.pipe()  # Xvfb picks a free display itself and writes its number once it listens
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(told), "-screen", "0", "1100x760x24", "-nolisten", "tcp"],
                            pass_fds=(told,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(told)
    window = None
    try:
        with os.fdopen(ready) as answer:
            display = int(answer.readline())
        env = {**os.environ, "MIST_HOME": str(alice.person.home), "DISPLAY": f":{display}"}
        window = subprocess.Popen([BIN / "mist", "app"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        picture = tmp_path / "window.png"
        try:
            wait_until(lambda: window.poll() is not None or _dark_library_on_screen(display, picture),
                       "the library to be drawn in the window", 120, 0.5)
            assert window.poll() is None
        except AssertionError as exc:
            window.terminate()
            raise AssertionError(f"{exc}; the screen is in {picture}; the window said: "
                                 f"{window.communicate(timeout=30)}") from None
        if SCREENSHOTS:
            shutil.copy(picture, Path(SCREENSHOTS) / "window.png")
    finally:
        if window is not None:
            window.terminate()
            window.wait(timeout=30)
        xvfb.terminate()
        xvfb.wait(timeout=30)


def _dark_library_on_screen(display: int, picture: Path) -> bool:
    """The library is on the screen: mostly the app's background colour, the top bar's surface above it, and the
    games' coloured header art over a sixth of it. Every other page of the app is dark greys (the sign-in and
    settings pages have under 2% of colourful pixels, a game's page with its one picture 13%; the library 20%)."""
    subprocess.run(["import", "-display", f":{display}", "-window", "root", str(picture)], check=True,
                   capture_output=True)
    histogram = subprocess.run(["convert", str(picture), "-format", "%c", "histogram:info:-"], check=True,
                               capture_output=True, text=True).stdout
    counts = {}
    for line in histogram.splitlines():
        count, _, rest = line.strip().partition(":")
        colour = rest.split("#", 1)[1][:6].lower() if "#" in rest else ""
        counts[colour] = counts.get(colour, 0) + int(count)
    total = sum(counts.values())
    background, surface = counts.get("10151c", 0), counts.get("1a222d", 0)
    colourful = float(subprocess.run(  # the share of pixels whose chroma passes 12%: the games' art
        ["convert", str(picture), "-colorspace", "HCL", "-channel", "G", "-separate", "+channel", "-threshold", "12%",
         "-format", "%[fx:mean]", "info:"], check=True, capture_output=True, text=True).stdout)
    return background > total * 0.3 and surface > total * 0.02 and colourful > 0.16


def test_an_ended_session_shows_its_screen_and_signing_out_is_in_the_settings(
    page: Any, alice: Daemon, admin: Person, server: Server
) -> None:
    admin.run("mistpipe", "user", "passwd", "alice", env={"MIST_PASSWORD": "a-new-password-2"})  # ends her sessions
    wait_until(lambda: alice.call("/api/account")[1]["why"] == "expired", "the daemon to hear its session ended", 60, 0.1)
    page.goto(alice.url + "/")
    assert page.url.endswith("/signin") and page.get_attribute("#signin-error", "data-kind") == "expired"
    assert page.input_value("#url") == server.url and page.input_value("#user") == "alice"  # only the password to type
    page.fill("#password", "a-new-password-2")
    page.click("button.primary")
    assert page.locator(".game-card").count() == len(LIBRARY)
    page.goto(alice.url + "/settings")
    page.click("text=Sign out")
    assert page.url.endswith("/signin") and alice.call("/api/account")[1]["signed_in"] is False
    assert not (alice.person.home / "credentials-mist.json").exists()
    assert alice.person.json("mist", "status")["tracker_error"] == "not signed in"


def test_a_key_changed_without_a_hand_over_shows_its_screen_until_the_new_fingerprint_is_given(
    page: Any, alice: Daemon, server: Server
) -> None:
    """The last test of the module: it rotates the server's key as if it leaked (no hand-over), which every later
    test would have to follow."""
    page.goto(alice.url + "/signin")  # signed out by the test before
    page.fill("#url", server.url)
    page.fill("#user", "alice")
    page.fill("#password", "a-new-password-2")
    page.click("button.primary")
    assert page.locator(".game-card").count() == len(LIBRARY)
    rotation: dict = {}
    restarted = restart(server, lambda data: rotation.update(rotate(data, "--leaked")))
    server.process, server.log = restarted.process, restarted.log  # the module's fixture stops the new one
    wait_until(lambda: alice.call("/api/account")[1]["why"] == "key-changed",
               "the daemon to see, at its swarm's welcome, a key nothing it trusts vouches for", 120, 0.1)
    page.goto(alice.url + "/")
    assert page.url.endswith("/signin") and page.get_attribute("#signin-error", "data-kind") == "key-changed"
    assert rotation["new_fingerprint"].split("-")[0] in page.inner_text("#signin-error")
    page.fill("#password", "a-new-password-2")
    page.fill("#fingerprint", rotation["new_fingerprint"])
    page.click("button.primary")
    assert page.locator(".game-card").count() == len(LIBRARY)
    assert alice.person.session()["public_key"] == rotation["new_key"]
