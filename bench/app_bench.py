"""Measure the friends' app against issue 14's targets, each beside a baseline measured in the same run.

1. A library of 500 games opens in under a second: Chromium (Playwright) loads the daemon's library page
   until every game card is in the page; baseline: the tracker's own GET /api/games for the same 500 games.
2. The daemon answers its API in under 20 ms at the median while a download runs at full speed: GET
   /api/games and GET /api/downloads, 5 times a second, during an install of a large game; baseline: the
   same calls with nothing downloading.
3. The page costs the download less than 5% of its throughput: the same install with no page open, and
   with Chromium showing the Downloads page (live progress, the speed chart), alternated.

Everything runs on loopback: a real mist-server, a real `mist daemon`, Debian's Chromium.

Usage: python bench/app_bench.py [--games 500] [--mib 200] [--repeat 3] [--out bench/results/app_bench.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.browser import chromium  # noqa: E402
from tests.e2e.friend_app import Daemon, eventually  # noqa: E402
from tests.e2e.conftest import ADMIN_PASSWORD, FRIEND_PASSWORD, Person, start_server  # noqa: E402

MIB = 1024 * 1024


def timed_get(url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def commit_copies(admin: Person, url: str, games: int) -> None:
    """`games` games, each with one build: the first pushed, the rest committed from its chunks (the same bytes
    under another name), which is what a big library costs the tracker, without hours of pushing."""
    from client import credentials
    from shared import manifest as manifest_mod

    token = credentials.load(admin.home, "mistpipe").access_token
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{url}/api/games/game000/builds/1.0/manifest", headers=headers)
    with urllib.request.urlopen(request) as response:
        data = response.read()
    base = manifest_mod.parse(data)
    for i in range(1, games):
        slug = f"game{i:03d}"
        body = json.dumps({"slug": slug, "title": f"Game {i:03d} {random.Random(i).choice(['Saga', 'Quest', 'Tales', 'Rush'])}"})
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/games", data=body.encode(), headers=headers))
        copy = manifest_mod.Manifest(slug, "1.0", base.chunking, base.files)
        commit = urllib.request.Request(f"{url}/api/games/{slug}/builds", data=copy.canonical_bytes(),
                                        headers={**headers, "Content-Type": "application/octet-stream"})
        urllib.request.urlopen(commit).read()


def library_open(daemon: Daemon, repeat: int) -> list[float]:
    """Milliseconds from navigation to every game card in the library page."""
    times = []
    with chromium() as browser:
        page = browser.new_page()
        page.goto(daemon.one_time_url())
        for _ in range(repeat):
            started = time.perf_counter()
            page.goto(daemon.url + "/", wait_until="domcontentloaded")
            count = page.locator(".game-card").count()
            times.append((time.perf_counter() - started) * 1000)
            assert count > 0
    return times


def api_latencies(daemon: Daemon, stop: threading.Event, out: dict[str, list[float]]) -> None:
    headers = {"Authorization": f"Bearer {daemon.token}"}
    while not stop.is_set():
        for path in ("/api/games", "/api/downloads"):
            out.setdefault(path, []).append(timed_get(daemon.url + path, headers))
        stop.wait(0.2)


def install_once(daemon: Daemon, game: str, folder: Path, page: Any = None) -> tuple[float, float]:
    """(MB/s of the install, seconds); with `page`, a browser shows the Downloads page, live, all along."""
    shutil.rmtree(folder, ignore_errors=True)
    if page is not None:
        page.goto(daemon.url + "/downloads")
        eventually(lambda: page.evaluate("document.body.dataset.live") == "yes", "the page's live stream")
    started = time.perf_counter()
    status, body = daemon.call(f"/api/games/{game}/install", "POST", {"dir": str(folder)})
    assert status == 202, body
    job = body["id"]
    done = eventually(lambda: next((j for j in daemon.call("/api/downloads")[1]["finished"] if j["id"] == job), None),
                      "the install", 600, every=0.05)
    seconds = time.perf_counter() - started
    assert done["state"] == "done", done
    if page is not None:
        assert page.locator(".download-row").count() > 0  # the page followed it
    status, _ = daemon.call(f"/api/games/{game}/uninstall", "POST", {})
    assert status == 200
    return done["result"]["bytes_written"] / seconds / 1e6, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=500)
    parser.add_argument("--mib", type=int, default=200, help="size of the large game installed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mist-app-bench-"))
    server = start_server(root / "server")
    daemon = None
    try:
        admin = Person(root / "admin", ADMIN_PASSWORD)
        admin.home.mkdir()
        admin.run("mistpipe", "login", server.url, "--user", "admin")
        small = root / "small"
        small.mkdir()
        (small / "game.bin").write_bytes(random.Random(1).randbytes(300_000))
        admin.run("mistpipe", "new-game", "game000", "--title", "Game 000 Saga")
        admin.run("mistpipe", "push", "game000", str(small), "--version", "1.0")
        commit_copies(admin, server.url, args.games)
        big = root / "big"
        big.mkdir()
        rng = random.Random(2)
        for i in range(max(1, args.mib // 50)):
            (big / f"data{i}.pak").write_bytes(rng.randbytes(min(50, args.mib) * MIB))
        admin.run("mistpipe", "new-game", "big", "--title", "Big Game")
        admin.run("mistpipe", "push", "big", str(big), "--version", "1.0")
        admin.run("mistpipe", "user", "add", "alice", env={"MIST_PASSWORD": FRIEND_PASSWORD})
        alice = Person(root / "alice", FRIEND_PASSWORD)
        alice.home.mkdir()
        alice.run("mist", "login", server.url, "--user", "alice")
        daemon = Daemon.start(alice)
        eventually(lambda: daemon.call("/api/status")[1]["connected"], "the daemon to connect")

        token = {"Authorization": f"Bearer {alice.session()['access_token']}"}
        tracker = [timed_get(server.url + "/api/games", token) for _ in range(args.repeat * 3)]
        daemon.call("/api/games")  # the daemon's first look fills its catalog cache, as any start does
        opened = library_open(daemon, args.repeat * 3)

        idle: dict[str, list[float]] = {}
        headers = {"Authorization": f"Bearer {daemon.token}"}
        for _ in range(25):
            for path in ("/api/games", "/api/downloads"):
                idle.setdefault(path, []).append(timed_get(daemon.url + path, headers))
        plain, paged = [], []
        busy: dict[str, list[float]] = {}
        with chromium() as browser:  # started before any timing: its start-up is not the page's cost
            page = browser.new_page()
            page.goto(daemon.one_time_url())
            for _ in range(args.repeat):
                stop = threading.Event()
                prober = threading.Thread(target=api_latencies, args=(daemon, stop, busy))
                prober.start()
                page.goto("about:blank")
                plain.append(install_once(daemon, "big", root / "install"))
                stop.set()
                prober.join()
                paged.append(install_once(daemon, "big", root / "install", page))
        rates = statistics.median(r for r, _ in plain), statistics.median(r for r, _ in paged)
        lines = [
            "# The friends' app: benchmark (issue 14)", "",
            f"{datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores, shared), Python {platform.python_version()}; "
            f"`{' '.join(shlex.quote(a) for a in ['python', 'bench/app_bench.py', *sys.argv[1:]])}`", "",
            "| measure | median | min | max | baseline (same run) | ratio |", "| --- | --- | --- | --- | --- | --- |",
            f"| library page, {args.games + 1} games, to every card (ms) | {statistics.median(opened):.0f} | {min(opened):.0f} | "
            f"{max(opened):.0f} | tracker GET /api/games {statistics.median(tracker):.0f} ms | "
            f"{statistics.median(opened) / statistics.median(tracker):.1f}x |",
            *(f"| daemon GET {path} during a full-speed install (ms) | {statistics.median(busy[path]):.1f} | "
              f"{min(busy[path]):.1f} | {max(busy[path]):.1f} | idle {statistics.median(idle[path]):.1f} ms | "
              f"{statistics.median(busy[path]) / statistics.median(idle[path]):.1f}x |" for path in sorted(busy)),
            f"| install of {args.mib} MiB with the Downloads page open (MB/s) | {rates[1]:.0f} | {min(r for r, _ in paged):.0f} | "
            f"{max(r for r, _ in paged):.0f} | no page {rates[0]:.0f} MB/s | {rates[1] / rates[0]:.2f} |", "",
            f"API samples during installs: {sum(map(len, busy.values()))}; idle samples: {sum(map(len, idle.values()))}; "
            f"installs: {args.repeat} of each kind, "
            "alternated.",
        ]
        report = "\n".join(lines) + "\n"
        print(report)
        if args.out:
            args.out.write_text(report)
    finally:
        if daemon is not None:
            daemon.stop()
        server.process.terminate()
        server.process.wait(timeout=60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
