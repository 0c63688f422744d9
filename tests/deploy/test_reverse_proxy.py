"""deploy/nginx/mist.conf in front of a real mist-tracker and mist-seeder: real nginx, real TLS, real clients.

The example is rendered with loopback ports and a certificate from a throwaway certificate authority, which
the clients trust through SSL_CERT_FILE (aiohttp builds its default TLS context with the standard library,
which reads it). The tracker knows only its public URL (MIST_PUBLIC_URL), as the README's "Host it for
friends" sets it up: the seeder's address, the /get page and friends seeding each other all go through nginx.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from seeder.app import MAX_UPLOAD_BODY
from tests.deploy.proxyconf import EXAMPLE, https_server, main_conf, parse, render, seconds, size_bytes
from tests.e2e.conftest import ADMIN_PASSWORD, BIN, FRIEND_PASSWORD, Person, free_port
from tests.e2e.gametree import MB, assert_same_tree, make_tree
from tests.e2e.test_split_services import start
from tests.waiting import wait_until
from tracker.app import MAX_BODY
from tracker.routes.swarm import HEARTBEAT

LOOPBACK = {"MIST_PEER_LOOPBACK": "1"}  # both friends on this machine: let WebRTC use 127.0.0.1

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
PROBE = Path(__file__).with_name("swarm_probe.py")
GAME, VERSION = "proxied", "1"


@dataclass
class Proxy:
    url: str  # https://127.0.0.1:PORT, the only address the clients are given
    plain_port: int
    cert: Path  # the throwaway authority's certificate: all the clients trust
    processes: list[subprocess.Popen]
    nginx_log: list[str] = field(default_factory=list)
    seeder_command: list = field(default_factory=list)

    @contextmanager
    def seeder_down(self) -> Iterator[None]:
        """The seeder behind nginx stopped for the block: only friends can serve chunks."""
        seeder = self.processes[1]
        seeder.terminate()
        seeder.wait(timeout=10)
        try:
            yield
        finally:
            self.processes[1] = start(self.seeder_command)

    @property
    def trust(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": str(self.cert)}

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def throwaway_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A certificate authority made for this run, and a certificate for 127.0.0.1 it signed: the clients trust
    the authority alone (as a friend's computer trusts Let's Encrypt's), never the server's certificate itself."""
    ca_key, ca_cert = folder / "ca-key.pem", folder / "ca.pem"
    key, request, cert = folder / "key.pem", folder / "request.pem", folder / "cert.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "2", "-subj", "/CN=Mist test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", "/dev/stdin"],
    ]
    extensions = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    for step in steps:
        subprocess.run([str(a) for a in step], check=True, capture_output=True, input=extensions.encode())
    return ca_cert, cert, key


def start_nginx(nginx: str, prefix: Path, log: list[str]) -> subprocess.Popen:
    """nginx in the foreground; ready once its master says it started the worker (the ports are bound by then)."""
    process = subprocess.Popen([nginx, "-c", str(prefix / "nginx.conf"), "-p", str(prefix)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        log.append(line)
        if "start worker process " in line:
            break
    else:
        raise AssertionError("nginx exited before it was ready:\n" + "".join(log))
    stderr = process.stderr
    threading.Thread(target=lambda: log.extend(stderr), daemon=True).start()  # keep the pipe drained
    return process


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if NGINX is None:
        pytest.fail("nginx is not installed; scripts/system-packages installs it (apt-get install nginx-light)")
    root = tmp_path_factory.mktemp("proxy")
    tracker_port, seeder_port, https_port, http_port = (free_port() for _ in range(4))
    authority, cert, key = throwaway_ca(root)
    proxy = Proxy(f"https://127.0.0.1:{https_port}", http_port, authority, [])
    site = root / "mist.conf"
    site.write_text(render(EXAMPLE.read_text(), tracker=tracker_port, seeder=seeder_port, https=https_port,
                           http=http_port, cert=cert, key=key))
    (root / "nginx.conf").write_text(main_conf(root, site))
    data = root / "data"
    try:
        proxy.processes.append(start(
            [BIN / "mist-tracker", "--data", str(data), "--port", str(tracker_port)],  # the seeder: PUBLIC_URL/seeder
            {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, "MIST_PUBLIC_URL": proxy.url}))
        proxy.seeder_command = [BIN / "mist-seeder", "--store", str(data / "store"), "--port", str(seeder_port),
                                "--tracker-url", f"http://127.0.0.1:{tracker_port}"]
        proxy.processes.append(start(proxy.seeder_command))
        proxy.processes.append(start_nginx(NGINX, root, proxy.nginx_log))
        yield proxy
    finally:
        for process in proxy.processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def admin(proxy: Proxy, tmp_path_factory: pytest.TempPathFactory) -> Person:
    person = Person(tmp_path_factory.mktemp("admin"), ADMIN_PASSWORD)
    person.run("mistpipe", "login", proxy.url, "--user", "admin", env=proxy.trust)
    return person


@pytest.fixture(scope="module")
def game(proxy: Proxy, admin: Person, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tree = make_tree(tmp_path_factory.mktemp("game") / "build", seed=61, small_files=12, large=(1 * MB,))
    admin.run("mistpipe", "new-game", GAME, "--title", "Proxied", env=proxy.trust)
    pushed = admin.json("mistpipe", "push", GAME, str(tree), "--version", VERSION, env=proxy.trust)
    return tree, pushed


@pytest.fixture(scope="module")
def friend(proxy: Proxy, admin: Person, tmp_path_factory: pytest.TempPathFactory) -> Person:
    admin.run("mistpipe", "user", "add", "dana", env={**proxy.trust, "MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(tmp_path_factory.mktemp("dana"), FRIEND_PASSWORD)
    person.run("mist", "login", proxy.url, "--user", "dana", env=proxy.trust)
    return person


def test_a_push_and_an_install_through_nginx_over_https_are_bit_identical(
    proxy: Proxy, game: tuple[Path, dict], friend: Person, tmp_path: Path
) -> None:
    tree, pushed = game
    assert pushed["chunks_total"] > 0 and pushed["chunks_uploaded"] == pushed["chunks_total"]  # to {url}/seeder/
    installed = friend.json("mist", "install", GAME, "--dir", str(tmp_path / "game"), env=proxy.trust)
    assert installed["bytes_downloaded"] > 0
    assert_same_tree(tree, tmp_path / "game")
    assert friend.session("mist")["url"] == proxy.url


def test_the_get_page_through_the_proxy_names_the_public_https_address(proxy: Proxy) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=proxy.context())
    connection.request("GET", "/get?os=linux")
    page = connection.getresponse().read().decode()
    assert f"pipx install {proxy.url}/get/mist-" in page and f"mist login {proxy.url} --user YOUR_NAME" in page


def test_friends_seed_each_other_with_only_the_proxy_between_them_and_the_tracker(
    proxy: Proxy, admin: Person, tmp_path: Path
) -> None:
    """One friend's daemon joins the swarm over wss:// through nginx; with the seeder stopped, the next friend's
    install (its tickets, manifest and offers all through nginx) gets every chunk from the first."""
    tree = make_tree(tmp_path / "coop", seed=62, small_files=10, large=(2 * MB,))
    admin.run("mistpipe", "new-game", "coop", "--title", "Co-op", env=proxy.trust)
    admin.run("mistpipe", "push", "coop", str(tree), "--version", VERSION, env=proxy.trust)
    sharer, newcomer = (_friend(proxy, admin, tmp_path, name) for name in ("erin", "finn"))
    sharer.run("mist", "install", "coop", "--dir", str(tmp_path / "erin-game"), env=proxy.trust)
    env = {**os.environ, "MIST_HOME": str(sharer.home), **proxy.trust, **LOOPBACK}
    daemon = subprocess.Popen([BIN / "mist", "daemon", "--port", "0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert daemon.stderr is not None and "local API at" in daemon.stderr.readline()
        said: list[str] = []
        threading.Thread(target=lambda: said.extend(daemon.stderr), daemon=True).start()  # keep its pipe drained
        wait_until(lambda: (status := _local_status(sharer.home))["connected"] and status["builds_shared"],
                   lambda: f"the daemon to join the swarm through nginx: {_local_status(sharer.home)}", 30, 0.05)
        with proxy.seeder_down():
            outcome = newcomer.json("mist", "install", "coop", "--dir", str(tmp_path / "finn-game"),
                                    env={**proxy.trust, **LOOPBACK})
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
    assert_same_tree(tree, tmp_path / "finn-game")
    assert outcome["bytes_from_seeder"] == 0 and outcome["peers_used"] == 1, json.dumps(outcome) + "".join(said)
    assert outcome["bytes_from_peers"] == outcome["bytes_downloaded"] > 0


def _friend(proxy: Proxy, admin: Person, tmp_path: Path, name: str) -> Person:
    admin.run("mistpipe", "user", "add", name, env={**proxy.trust, "MIST_PASSWORD": FRIEND_PASSWORD})
    person = Person(tmp_path / name, FRIEND_PASSWORD)
    person.run("mist", "login", proxy.url, "--user", name, env=proxy.trust)
    return person


def _local_status(home: Path) -> dict:
    """The daemon's own status, from its local API (as `mist status` reads it)."""
    address = json.loads((home / "daemon.json").read_text())
    request = urllib.request.Request(address["url"] + "/api/status", headers={"Authorization": f"Bearer {address['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_clients_refuse_the_proxy_without_trusting_its_certificate(proxy: Proxy, tmp_path: Path) -> None:
    stranger = Person(tmp_path / "stranger", ADMIN_PASSWORD)
    result = stranger.run("mistpipe", "login", proxy.url, "--user", "admin", check=False,
                          env={"SSL_CERT_FILE": str(tmp_path / "no-such-file")})  # the system's CAs only
    assert result.returncode != 0 and "certificate" in result.stderr.lower(), result.stderr


def test_the_swarm_websocket_carries_messages_both_ways_through_nginx(
    proxy: Proxy, admin: Person, friend: Person, game: tuple[Path, dict]
) -> None:
    result = subprocess.run([sys.executable, str(PROBE), str(admin.home), str(friend.home), GAME, VERSION],
                            capture_output=True, text=True, env={**os.environ, **proxy.trust}, timeout=60)
    assert result.returncode == 0, result.stderr + "".join(proxy.nginx_log[-20:])
    met = json.loads(result.stdout)
    assert met["holders"] == ["dana"]
    assert met["offers_seen_by_friend"] == ["offer-sdp"] and met["answer"] == "answer:offer-sdp"


def test_plain_http_is_redirected_to_https(proxy: Proxy) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.plain_port, timeout=10)
    connection.request("GET", "/api/info")
    response = connection.getresponse()
    assert response.status == 301 and response.getheader("Location") == "https://127.0.0.1/api/info"


def _headers_only(proxy: Proxy, method: str, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    """Send a request's headers and no body: nginx answers from the headers alone when it refuses."""
    port = int(proxy.url.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=proxy.context())
    connection.putrequest(method, path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    return connection.getresponse()


@pytest.mark.parametrize("path, limit", [("/seeder/chunks", MAX_UPLOAD_BODY), ("/api/games/x/builds", MAX_BODY)])
def test_bodies_over_the_services_limits_are_refused_at_the_proxy(proxy: Proxy, path: str, limit: int) -> None:
    response = _headers_only(proxy, "POST", path, {"Content-Length": str(limit + 1)})
    assert response.status == 413


def test_the_request_id_is_made_or_passed_through(proxy: Proxy) -> None:
    response = _headers_only(proxy, "GET", "/api/info", {"X-Request-Id": "trace-me-1"})
    assert response.status == 200 and response.getheader("X-Request-Id") == "trace-me-1"
    made = _headers_only(proxy, "GET", "/api/info", {}).getheader("X-Request-Id") or ""
    assert re.fullmatch(r"[0-9a-f]{32}", made), made  # nginx's $request_id


def test_the_example_matches_what_the_services_accept() -> None:
    """Checked on the file itself, so a changed limit in the code cannot leave the proxy behind."""
    server = https_server(parse(EXAMPLE.read_text()))
    assert size_bytes(server.location("/").one("client_max_body_size").args[0]) == MAX_BODY
    assert size_bytes(server.location("/seeder/").one("client_max_body_size").args[0]) == MAX_UPLOAD_BODY
    assert server.one("proxy_request_buffering").args == ["off"]
    swarm = server.location("=", "/api/swarm")
    headers = {d.args[0].lower(): d.args[1] for d in swarm.all("proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade" and headers["connection"].lower() == "upgrade"
    assert seconds(swarm.one("proxy_read_timeout").args[0]) > 2 * HEARTBEAT  # a quiet client is not cut off
    # A location that sets any proxy_set_header inherits none from the server: each must set them all.
    needed = {"host", "x-request-id", "x-forwarded-for", "x-forwarded-proto"}
    for block in [server, *server.all("location")]:
        named = {d.args[0].lower() for d in block.all("proxy_set_header")}
        assert not named or needed <= named, f"`{block.name} {' '.join(block.args)}` misses {needed - named}"
