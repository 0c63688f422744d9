"""What the admin site's pages cost to serve (issue 16), against the API's game list in the same run.

The pages work out their figures when viewed: the game page parses every build's manifest and reads stored
sizes (dedup, patches), the storage page and the dashboard stat every object in the store, the storage page
also runs the garbage collector's mark and decide. This script starts a real `mist-server`, pushes a game's
builds with the real `mistpipe` (each a patch release of the one before: tests/e2e/gametree.py), signs in to
the site over HTTP like a browser, and times each page and the baseline `GET /api/games` (the catalog as
`mist ls` reads it) in interleaved rounds, one request at a time.

Usage: .venv/bin/python bench/admin_pages.py [--builds 10] [--requests 20] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.e2e.gametree import MB, make_tree, next_version  # noqa: E402

BIN = Path(sys.executable).parent
PASSWORD = "bench-admin-password"
PAGES = ("/admin/", "/admin/games/bench", "/admin/storage", "/admin/activity", "/admin/jobs")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MIST_ADMIN_PASSWORD": PASSWORD}
    process = subprocess.Popen([BIN / "mist-server", "--data", str(data), "--port", str(port)],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("Mist is running at"):
            break
    else:
        raise SystemExit("mist-server exited before it was ready")
    return process, f"http://127.0.0.1:{port}"


def mistpipe(home: Path, *args: str) -> None:
    env = {**os.environ, "MIST_HOME": str(home), "MIST_PASSWORD": PASSWORD}
    subprocess.run([BIN / "mistpipe", *args], check=True, env=env, capture_output=True, stdin=subprocess.DEVNULL)


def sign_in(url: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{url}/admin/login").read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    body = urllib.parse.urlencode({"csrf": token, "user": "admin", "password": PASSWORD, "next": "/admin/"}).encode()
    opener.open(urllib.request.Request(f"{url}/admin/login", data=body, headers={"Origin": url}))
    return opener


def bearer(url: str) -> str:
    body = json.dumps({"user": "admin", "password": PASSWORD}).encode()
    answer = urllib.request.urlopen(urllib.request.Request(f"{url}/api/login", data=body,
                                                           headers={"Content-Type": "application/json"}))
    return str(json.loads(answer.read())["access_token"])


def timed(fetch, requests: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mist-admin-bench-") as tmp:
        root = Path(tmp)
        server, url = start(root / "data")
        try:
            home = root / "home"
            mistpipe(home, "login", url, "--user", "admin")
            mistpipe(home, "new-game", "bench", "--title", "Bench")
            tree = make_tree(root / "builds" / "1", seed=1, small_files=200, large=(8 * MB, 4 * MB, 2 * MB))
            for n in range(1, args.builds + 1):
                if n > 1:
                    tree = next_version(tree, root / "builds" / str(n), seed=n)
                mistpipe(home, "push", "bench", str(tree), "--version", f"1.{n}", "--wait", "--yes")
            opener, token = sign_in(url), bearer(url)
            api = urllib.request.Request(f"{url}/api/games", headers={"Authorization": f"Bearer {token}"})
            targets = {"GET /api/games (baseline)": lambda: urllib.request.urlopen(api).read()}
            for page in PAGES:
                targets[f"GET {page}"] = lambda page=page: opener.open(f"{url}{page}").read()
            results: dict[str, list[float]] = {name: [] for name in targets}
            for round_ in range(args.rounds):
                names = list(targets)
                names = names[round_ % len(names):] + names[: round_ % len(names)]
                for name in names:
                    results[name] += timed(targets[name], args.requests)
            objects = sum(len(files) for _, _, files in os.walk(root / "data" / "store"))
        finally:
            server.terminate()
            server.wait(timeout=30)
    base = statistics.median(results["GET /api/games (baseline)"])
    lines = [f"# Admin pages (bench/admin_pages.py), {datetime.date.today()}", "",
             f"{args.builds} builds of one game ({objects} objects in the store), {args.rounds} rounds of "
             f"{args.requests} requests per target, one at a time, on {os.cpu_count()} CPUs.", "",
             "| request | median ms | p90 ms | median / baseline |", "| --- | ---: | ---: | ---: |"]
    for name, times in results.items():
        p90 = statistics.quantiles(times, n=10)[-1]
        lines.append(f"| {name} | {statistics.median(times):.1f} | {p90:.1f} | {statistics.median(times) / base:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
