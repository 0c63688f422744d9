"""A real nginx in front of a real mist-seeder, with deploy/nginx/seeder-accel.conf: nginx sends the exact bytes."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shared import compression, pack
from shared.chunkstore import DirectoryChunkStore
from shared.chunking import DEFAULT_PARAMS
from shared.manifest import Manifest
from shared.signing import Signer
from shared.tickets import READ, Ticket
from tests.e2e.conftest import BIN, free_port
from tests.e2e.test_split_services import start
from tests.stored import store_file
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "deploy" / "nginx" / "seeder-accel.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_conf(work: Path, store: Path, port: int, seeder_port: int) -> str:
    snippet = SNIPPET.read_text().replace("/var/lib/mist/store/", f"{store}/")
    user = "user root;" if os.geteuid() == 0 else ""  # pytest's temporary folders are private to their owner
    temps = " ".join(f"{k}_temp_path {work}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
daemon off;
worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    {temps}
    upstream mist_seeder {{ server 127.0.0.1:{seeder_port}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        {snippet}
    }}
}}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: scripts/system-packages installs nginx-light (apt-get install nginx-light)")
    work = tmp_path_factory.mktemp("accel")
    store = DirectoryChunkStore(work / "store", durable=False)
    signer = Signer.generate()
    rng = random.Random(3)
    build = Manifest("game", "1", DEFAULT_PARAMS, (store_file(store, "a.bin", rng.randbytes(700_000)),))
    store.put(build.digest(), compression.compress(build.canonical_bytes()))
    outside = store_file(store, "b.bin", rng.randbytes(100_000))
    seeder_port, port = free_port(), free_port()
    seeder = start([BIN / "mist-seeder", "--store", str(store.root), "--public-key", signer.public_key,
                    "--port", str(seeder_port), "--processes", "2", "--accel-redirect", "/_store/"])
    (work / "nginx.conf").write_text(nginx_conf(work, store.root, port, seeder_port))
    nginx = subprocess.Popen([NGINX, "-c", str(work / "nginx.conf"), "-p", str(work)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(nginx, port)
        ticket = Ticket("friend", READ, build.digest(), 2**40).encode(signer)
        yield f"http://127.0.0.1:{port}", store, build, outside, {"Authorization": f"Ticket {ticket}"}
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        seeder.terminate()
        seeder.wait(timeout=10)


def wait_listening(process: subprocess.Popen, port: int) -> None:
    """nginx prints no line when ready: poll its port (bounded), failing with its own words if it exits."""
    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"nginx exited: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, f"nginx to listen on {port}", 30)


def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_nginx_sends_the_exact_stored_bytes(stack) -> None:
    url, store, build, _, headers = stack
    for ref in build.files[0].chunks:
        status, answer_headers, body = get(f"{url}/seeder/chunk/{ref.sha256}", headers)
        assert status == 200 and body == store.get(ref.sha256)
        assert "X-Accel-Redirect" not in answer_headers


def test_nginx_passes_the_seeders_refusals_on(stack) -> None:
    url, _, build, outside, headers = stack
    status, _, body = get(f"{url}/seeder/chunk/{build.files[0].chunks[0].sha256}")
    assert status == 403 and b"needs a ticket" in body
    status, _, body = get(f"{url}/seeder/chunk/{outside.chunks[0].sha256}", headers)
    assert status == 403 and b"not part of the build" in body


def test_the_store_is_not_reachable_without_the_seeder(stack) -> None:
    url, _, build, _, _ = stack
    h = build.files[0].chunks[0].sha256
    assert get(f"{url}/_store/{h[:2]}/{h[2:4]}/{h}")[0] == 404


def test_batched_fetches_stream_through_nginx(stack) -> None:
    url, store, build, _, headers = stack
    hashes = [ref.sha256 for ref in build.files[0].chunks]
    status, _, body = get(f"{url}/seeder/fetch", headers, pack.encode_hashes(hashes))
    assert status == 200
    assert [(r.sha256, bytes(r.payload)) for r in pack.iter_records(body)] == [(h, store.get(h)) for h in hashes]
