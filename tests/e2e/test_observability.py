"""Observability of the real services: /metrics after a push and an install, /healthz, request ids in JSON logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from shared.pack import HEADER_SIZE
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, Server, free_port
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_split_services import Service, start
from tests.scrape import Scrape

# Another seeder process counting in the same directory, as the processes sharing one port will.
SIBLING = """
import sys
from pathlib import Path
from shared.service.metrics import Registry, use_directory
from seeder.app import SeederCounters
use_directory(Path(sys.argv[1]), empty=False)
SeederCounters.on(Registry()).chunks_served.inc(5)
"""


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(url: str) -> Scrape:
    status, headers, body = get(f"{url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), (status, headers)
    return Scrape(body.decode())


def json_line(service: Service, *needles: str) -> dict:
    """The first JSON log line of `service` holding every needle, waiting for the service to write it."""
    return json.loads(service.wait_for_line(lambda line: all(n in line for n in needles)))


def test_the_services_count_log_and_report_health(tmp_path: Path) -> None:
    data, counting = tmp_path / "data", tmp_path / "seeder-metrics"
    tracker_url = f"http://127.0.0.1:{free_port()}"
    seeder_port = free_port()
    seeder_url = f"http://127.0.0.1:{seeder_port}"
    env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD}
    env.pop("MIST_LOG_FORMAT", None)  # the services' default: JSON
    processes: list[subprocess.Popen] = []
    try:
        tracker = start([BIN / "mist-tracker", "--data", str(data), "--port", tracker_url.rsplit(":", 1)[1],
                         "--seeder-url", f"{seeder_url}/seeder"], env)
        processes.append(tracker)
        seeder = start([BIN / "mist-seeder", "--store", str(data / "store"), "--port", str(seeder_port),
                        "--tracker-url", tracker_url], {**env, "MIST_METRICS_DIR": str(counting)})
        processes.append(seeder)
        worker = Service([BIN / "mist-worker", "--data", str(data)], env)
        processes.append(worker)

        for url in (tracker_url, seeder_url, f"{seeder_url}/seeder"):
            status, _, body = get(f"{url}/healthz")
            assert status == 200 and json.loads(body)["ok"] is True, (url, body)

        admin = Person(tmp_path / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", tracker_url, "--user", "admin")
        admin.run("mistpipe", "new-game", "seen", "--title", "Seen")
        tree = make_tree(tmp_path / "build", seed=61, small_files=12, large=(2 * MB, MB))
        pushed = admin.json("mistpipe", "push", "seen", str(tree), "--version", "1", "--wait")
        admin.run("mistpipe", "user", "add", "dora", env={"MIST_PASSWORD": FRIEND_PASSWORD})
        dora = Person(tmp_path / "dora", FRIEND_PASSWORD)
        dora.run("mist", "login", tracker_url, "--user", "dora")
        installed = dora.json("mist", "install", "seen", "--dir", str(tmp_path / "game"))
        assert_same_tree(tree, tmp_path / "game")
        assert installed["bytes_from_peers"] == 0 and installed["bytes_from_seeder"] == installed["bytes_downloaded"] > 0

        # The seeder: what the push uploaded, and what the install fetched, to the chunk and the byte.
        served = scrape(seeder_url)
        assert served["mist_seeder_chunks_uploaded_total"] == pushed["chunks_uploaded"] == pushed["chunks_total"]
        assert served["mist_seeder_chunk_bytes_uploaded_total"] == pushed["bytes_uploaded"]
        assert served["mist_seeder_chunks_served_total"] == pushed["chunks_total"]  # a fresh install: every chunk once
        assert served["mist_seeder_patches_served_total"] == 0 and served["mist_seeder_ticket_refusals_total"] == 0
        fetch = {"route": "/seeder/fetch", "method": "POST"}
        fetches = served[("mist_http_requests_total", {**fetch, "status": "200"})]
        assert served[("mist_http_response_bytes_total", fetch)] == installed["bytes_from_seeder"]
        # Each pack: a header per chunk and an END record, around the stored chunks.
        assert installed["bytes_from_seeder"] == (served["mist_seeder_chunk_bytes_served_total"]
                                                  + HEADER_SIZE * (pushed["chunks_total"] + fetches))
        assert served[("mist_http_request_duration_seconds_count", fetch)] == fetches

        # The tracker: the build, the client's tally of its download, the worker's job.
        counted = scrape(tracker_url)
        assert counted["mist_builds_published_total"] == 1
        assert counted["mist_swarm_tallies_total"] == 1
        assert counted["mist_swarm_seeder_bytes_reported_total"] == installed["bytes_from_seeder"]
        assert counted["mist_swarm_peer_bytes_reported_total"] == 0
        assert counted[("mist_jobs_finished_total", {"task": "make_patches"})] == 1
        assert counted["mist_jobs_failed_total"] == 0 and counted["mist_jobs_pending"] == 0
        assert counted[("mist_http_requests_total", {"route": "/api/games/{slug}/builds", "status": "201"})] == 1
        assert json_line(worker, "make_patches")["logger"].startswith("huey")  # the worker logs JSON too

        # A caller's request id comes back and is on the access line; an unsafe one is replaced.
        status, headers, body = get(f"{tracker_url}/api/info", {"X-Request-Id": "e2e-info-1"})
        assert status == 200 and headers["X-Request-Id"] == "e2e-info-1"
        line = json_line(tracker, '"e2e-info-1"')
        assert (line["logger"], line["method"], line["path"], line["status"]) == ("mist.access", "GET", "/api/info", 200)
        assert line["bytes"] == len(body) and line["duration_ms"] >= 0 and line["level"] == "INFO"
        assert set(line) >= {"time", "message", "request_id"}
        hostile = "x" * 200
        status, headers, _ = get(f"{tracker_url}/api/info", {"X-Request-Id": hostile})
        assert status == 200 and len(headers["X-Request-Id"]) == 16
        assert json_line(tracker, headers["X-Request-Id"])["path"] == "/api/info"
        assert not any(hostile in text for text in tracker.lines)

        # An error says its request id, the seeder logs it, and the refusal is counted.
        status, headers, body = get(f"{seeder_url}/seeder/fetch", {"X-Request-Id": "e2e-refused"}, "POST")
        assert status == 403 and json.loads(body)["request_id"] == headers["X-Request-Id"] == "e2e-refused"
        assert json_line(seeder, '"e2e-refused"')["status"] == 403

        # Another seeder process on the same counting directory adds to what this one reports.
        subprocess.run([sys.executable, "-c", SIBLING, str(counting)], check=True, timeout=120)
        summed = scrape(seeder_url)
        assert summed["mist_seeder_chunks_served_total"] == pushed["chunks_total"] + 5
        assert summed["mist_seeder_ticket_refusals_total"] == 1

        # A failed login is counted.
        wrong = Person(dora.home, "not-the-password")
        assert wrong.run("mist", "login", tracker_url, "--user", "dora", check=False).returncode != 0
        assert scrape(tracker_url)["mist_logins_failed_total"] == 1

        # Health: the seeder without its store is 503 and says why; the tracker does not use it to answer.
        (data / "store").rename(data / "store-moved")
        status, _, body = get(f"{seeder_url}/healthz")
        assert status == 503 and "chunk store" in json.loads(body)["store"]
        assert get(f"{tracker_url}/healthz")[0] == 200
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_the_embedded_server_has_one_metrics_page_with_the_seeder_in_it(server: Server, admin: Person,
                                                                       friend: Person, tmp_path: Path) -> None:
    admin.run("mistpipe", "new-game", "one", "--title", "One")
    tree = make_tree(tmp_path / "build", seed=62, small_files=5, large=(MB,))
    pushed = admin.json("mistpipe", "push", "one", str(tree), "--version", "1")
    before = scrape(server.url)
    installed = friend.json("mist", "install", "one", "--dir", str(tmp_path / "game"))
    after = scrape(server.url)
    assert after["mist_seeder_chunks_served_total"] - before["mist_seeder_chunks_served_total"] == pushed["chunks_total"]
    assert after["mist_seeder_chunks_uploaded_total"] >= pushed["chunks_uploaded"]
    assert after["mist_builds_published_total"] >= 1
    fetch = {"route": "/seeder/fetch"}
    assert (after.get("mist_http_response_bytes_total", fetch) - before.get("mist_http_response_bytes_total", fetch)
            == installed["bytes_from_seeder"])
    assert after["mist_swarm_tallies_total"] - before["mist_swarm_tallies_total"] == 1
    for path in ("/healthz", "/seeder/healthz"):
        status, _, body = get(f"{server.url}{path}")
        assert status == 200 and json.loads(body)["ok"] is True
