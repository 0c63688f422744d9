"""A friend's computer: the client alone, installed from the tracker's /get page into a fresh virtualenv,
then driving a real server (login with the page's fingerprint, ls, install, verify).

The virtualenv is made once for the module (about 10 CPU-seconds and 40 s of waiting on pip);
the wheel comes from the server itself, so this also proves `pip install URL` needs no package index for Mist.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import FRIEND_PASSWORD, Person, Server
from tests.e2e.gametree import MB, assert_same_tree, make_tree

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg", "huey", "redis", "jwt", "argon2", "prometheus_client", "aiohttp_jinja2")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


def get(url: str, headers: dict[str, str] | None = None) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def page(server: Server) -> str:
    return get(f"{server.url}/get", {"User-Agent": WINDOWS})


@pytest.fixture(scope="module")
def friends_python(server: Server, page: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the client installed by the command the /get page shows."""
    command = re.search(r"pipx install (\S+\.whl)", page)
    assert command, page
    venv = tmp_path_factory.mktemp("friend-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([venv / "bin" / "pip", "install", "--quiet", command.group(1)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


def test_the_page_names_this_tracker_its_key_and_the_command_for_the_visitors_platform(server: Server, page: str) -> None:
    info = json.loads(get(f"{server.url}/api/info"))
    assert f"mist login {server.url} --user YOUR_NAME --fingerprint {info['key_fingerprint']}" in page
    assert f"pipx install {server.url}/get/mist-" in page and "py -m pip install --user pipx" in page  # Windows
    assert 'href="/get?os=windows" aria-current="page"' in page
    mac = get(f"{server.url}/get?os=macos", {"User-Agent": WINDOWS})
    assert "brew install pipx" in mac and 'href="/get?os=macos" aria-current="page"' in mac


def test_in_a_real_browser_the_page_detects_linux_and_the_keyboard_reaches_the_other_platforms(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page()
            problems: list[str] = []
            tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            tab.goto(f"{server.url}/get")
            assert tab.get_by_role("link", name="Linux").get_attribute("aria-current") == "page"
            assert "sudo apt install pipx" in tab.inner_text("main")
            assert tab.locator("link[rel=stylesheet]").count() == 1
            assert tab.evaluate("getComputedStyle(document.querySelector('.command')).fontFamily").startswith("ui-monospace")
            for _ in range(2):  # the tabs come first: Windows, then macOS
                tab.keyboard.press("Tab")
            assert tab.evaluate("document.activeElement.textContent") == "macOS"
            tab.keyboard.press("Enter")
            tab.wait_for_url("**/get?os=macos")
            assert "brew install pipx" in tab.inner_text("main")
            assert problems == []  # the strict Content-Security-Policy blocked nothing the page needs
        finally:
            browser.close()


def test_a_bundle_the_admin_drops_in_is_offered_to_its_platform_only(server: Server) -> None:
    folder = server.data / "get"
    folder.mkdir(exist_ok=True)
    (folder / "mist-linux-x86_64.tar.gz").write_bytes(b"bundle bytes")
    linux = get(f"{server.url}/get", {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert 'href="/get/mist-linux-x86_64.tar.gz"' in linux
    assert "mist-linux-x86_64" not in get(f"{server.url}/get?os=windows")
    assert get(f"{server.url}/get/mist-linux-x86_64.tar.gz") == "bundle bytes"


def test_the_stable_wheel_address_leads_to_the_versioned_file(server: Server) -> None:
    with urllib.request.urlopen(f"{server.url}/get/mist.whl", timeout=30) as response:
        assert re.fullmatch(r".*/get/mist-[0-9.]+-py3-none-any\.whl", response.url), response.url
        assert response.headers["Content-Type"] == "application/zip"


def test_the_friends_install_has_the_client_and_none_of_the_server(friends_python: Path) -> None:
    found = subprocess.run(
        [friends_python / "python", "-c",
         "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))",
         *SERVER_ONLY, "client", "shared", "aiortc", "keyring", "platformdirs", "jinja2"],
        capture_output=True, text=True, check=True).stdout.split()
    assert found == ["client", "shared", "aiortc", "keyring", "platformdirs", "jinja2"]  # jinja2: the app's pages
    assert not (friends_python / "mist-server").exists() and not (friends_python / "mistpipe").exists()
    assert "Usage: mist" in subprocess.run([friends_python / "mist", "--help"], capture_output=True, text=True).stdout


def test_the_friends_install_logs_in_with_the_pages_fingerprint_and_installs_a_game(
    server: Server, admin: Person, friends_python: Path, page: str, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "build", seed=151, small_files=10, large=(1 * MB,))
    admin.run("mistpipe", "new-game", "faraway", "--title", "Far Away")
    admin.run("mistpipe", "push", "faraway", str(tree), "--version", "1.0")
    admin.run("mistpipe", "user", "add", "remy", env={"MIST_PASSWORD": FRIEND_PASSWORD})
    login = re.search(r"mist login (\S+) --user YOUR_NAME --fingerprint ([0-9a-f-]+)", page)
    assert login
    remy = Person(tmp_path / "remy-home", FRIEND_PASSWORD, bin=friends_python)
    remy.run("mist", "login", login.group(1), "--user", "remy", "--fingerprint", login.group(2))
    assert [g["slug"] for g in remy.json("mist", "ls")["games"]] == ["faraway"]
    remy.run("mist", "install", "faraway", "--dir", str(tmp_path / "games" / "faraway"))
    assert_same_tree(tree, tmp_path / "games" / "faraway")
    assert remy.json("mist", "verify", "faraway")["files_bad"] == []


def test_pip_install_of_the_source_is_the_client_alone() -> None:
    """What `pip install .` would install, resolved by pip itself: none of the server's libraries."""
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", "-", str(ROOT)], capture_output=True, text=True, check=True)
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.stdout)["install"]}
    assert {"aiortc", "keyring", "platformdirs", "jinja2", "mist"} <= names  # jinja2: the app's pages (mist app)
    assert not names & {"sqlalchemy", "alembic", "psycopg", "huey", "redis", "pyjwt", "argon2-cffi", "aiohttp-jinja2"}, names


def test_a_game_named_like_a_windows_device_gets_a_folder_windows_accepts(server: Server, admin: Person, friend: Person,
                                                                          tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "build", seed=152, small_files=3, large=())
    admin.run("mistpipe", "new-game", "nul", "--title", "A name Windows refuses as a folder")
    admin.run("mistpipe", "push", "nul", str(tree), "--version", "1")
    friend.run("mist", "settings", "--games-folder", str(tmp_path / "games"))
    friend.run("mist", "install", "nul")
    where = friend.json("mist", "ls")["games"]
    assert [g["installed"]["dir"] for g in where if g["slug"] == "nul"] == [str(tmp_path / "games" / "nul-game")]
    assert_same_tree(tree, tmp_path / "games" / "nul-game")
