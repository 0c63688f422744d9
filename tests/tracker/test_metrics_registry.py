"""The metrics registry: one process alone, and several processes counting in one directory (seeders on one port)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.service.metrics import Reading, Registry
from tests.scrape import Scrape

pytestmark = pytest.mark.same_on_every_backend  # counters in files, no database

# What one seeder process does: count in the shared directory, then exit (its file stays and keeps counting).
WORKER = """
import sys
from pathlib import Path
from shared.service.metrics import HttpMetrics, Registry, use_directory
from seeder.app import SeederCounters
use_directory(Path(sys.argv[1]), empty=False)
registry = Registry()
counters, http = SeederCounters.on(registry), HttpMetrics.on(registry)
counters.chunks_served.inc(int(sys.argv[2]))
http.observe("/seeder/fetch", "POST", 200, int(sys.argv[2]) * 100, 0.02)
"""


def _count_in(directory: Path, chunks: int) -> None:
    subprocess.run([sys.executable, "-c", WORKER, str(directory), str(chunks)], check=True, timeout=120)


def test_alone_a_registry_shows_its_counters_and_what_is_read_at_scrape() -> None:
    registry = Registry(directory=None)
    served = registry.counter("mist_test_things", "Things")
    served.inc(3)
    seen = []
    registry.read_at_scrape(lambda: seen.append(1) or [Reading("mist_test_online", "Online now", 5),
                                                      Reading("mist_test_done", "Done", 7, "counter", (("task", "x"),))])
    assert seen == []  # registering does not read
    scraped = Scrape(registry.exposition().decode())
    assert scraped["mist_test_things_total"] == 3 and scraped["mist_test_online"] == 5
    assert scraped[("mist_test_done_total", {"task": "x"})] == 7
    assert scraped.has("process_cpu_seconds_total")
    assert not scraped.has("mist_test_things_created")


def test_processes_counting_in_one_directory_add_up_on_any_scrape(tmp_path: Path) -> None:
    directory = tmp_path / "counting"
    directory.mkdir()
    _count_in(directory, 5)
    _count_in(directory, 7)
    assert len(list(directory.glob("*.db"))) >= 2  # one file per process (and per kind of metric)
    scraped = Scrape(Registry(directory=directory).exposition().decode())
    assert scraped["mist_seeder_chunks_served_total"] == 12
    assert scraped[("mist_http_requests_total", {"route": "/seeder/fetch", "status": "200"})] == 2
    assert scraped[("mist_http_response_bytes_total", {"route": "/seeder/fetch"})] == 1200
    assert scraped[("mist_http_request_duration_seconds_bucket", {"route": "/seeder/fetch", "le": "0.025"})] == 2
    assert not scraped.has("process_cpu_seconds_total")  # per process: meaningless summed


@pytest.mark.parametrize("empty, expected", [(True, 0), (False, 4)])
def test_a_new_group_of_processes_starts_from_zero(tmp_path: Path, empty: bool, expected: int) -> None:
    """The process that starts the seeders empties the directory; the ones it starts must not."""
    directory = tmp_path / "counting"
    directory.mkdir()
    _count_in(directory, 4)
    (directory / "notes.txt").write_text("not ours: left alone")
    script = ("import sys; from pathlib import Path; from shared.service.metrics import use_directory, Registry; "
              f"use_directory(Path(sys.argv[1]), empty={empty}); sys.stdout.write(Registry().exposition().decode())")
    out = subprocess.run([sys.executable, "-c", script, str(directory)], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    scraped = Scrape(out)
    assert (scraped["mist_seeder_chunks_served_total"] if scraped.has("mist_seeder_chunks_served_total") else 0) == expected
    assert (directory / "notes.txt").exists()


# A seeder process as `mist-seeder` makes it, counting in a directory and answering a scrape; then its environment.
SERVICE = """
import asyncio, json, os, sys
from pathlib import Path
from aiohttp import ClientSession, web
before = dict(os.environ)
from shared.service.metrics import use_directory
from seeder.main import make_root
from seeder.settings import SeederSettings
from shared.chunkstore import DirectoryChunkStore
from shared.signing import Signer

async def serve() -> str:
    use_directory(Path(sys.argv[1]))
    settings = SeederSettings(store=sys.argv[2], public_key=Signer.generate().public_key)
    runner = web.AppRunner(make_root(DirectoryChunkStore(Path(sys.argv[2])), settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = "http://127.0.0.1:%d" % runner.addresses[0][1]
    async with ClientSession() as session:
        assert (await session.get(url + "/seeder/healthz")).status == 200
        text = await (await session.get(url + "/metrics")).text()
    await runner.cleanup()
    return text

scraped = asyncio.run(serve())
print(json.dumps({"changed": sorted(set(os.environ.items()) ^ set(before.items())), "scraped": scraped}))
"""


def test_a_service_counting_in_a_directory_leaves_the_environment_as_it_was(tmp_path: Path) -> None:
    """prometheus_client's own file-backed values need PROMETHEUS_MULTIPROC_DIR set; ours are given the directory."""
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    out = subprocess.run([sys.executable, "-c", SERVICE, str(tmp_path / "counting"), str(tmp_path / "store")], env=env,
                         check=True, capture_output=True, text=True, timeout=120).stdout
    result = json.loads(out)
    assert result["changed"] == []
    scraped = Scrape(result["scraped"])
    assert scraped[("mist_http_requests_total", {"route": "/seeder/healthz", "status": "200"})] == 1  # from the file
    assert list((tmp_path / "counting").glob("counter_*.db"))
