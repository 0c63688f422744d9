"""The seeder under load (issue 6): 200 clients fetching chunks at once on loopback, against nginx.

Issue 6 asks that the seeder serve 200 concurrent clients with zero errors at
90% or more of the throughput of nginx serving the same chunk files, measured
in the same run. This script builds a chunk store (objects of the sizes Mist's
chunker makes, or the 256 KiB files of the issue's planning figure), a signed
manifest naming them and a read ticket, and starts, once for the whole run:

  nginx         plain static GET of the store's files (the baseline)
  seeder x1     `mist-seeder --processes 1`, clients POST /seeder/fetch packs like `mist` does
  seeder xN     `mist-seeder --processes N` (N = CPUs, SO_REUSEPORT), same requests
  accel         nginx in front of seeder xN with deploy/nginx/seeder-accel.conf and
                `--accel-redirect`: GET /seeder/chunk/<sha256> with the ticket, the seeder
                checks it and nginx sends the file (X-Accel-Redirect)
  proxied       the same nginx in front, POST /seeder/fetch passed through to seeder xN

Each is driven by wrk (C, epoll; the same generator for all) with 200
connections for --seconds, in rounds: every round runs each target once, the
order rotated from round to round, and each target is compared with nginx of
its own round. A fetch request asks for a batch of chunks in random order as
the client does (client/scheduler.py: up to 4 MiB of chunk content, at most 1024
chunks); a GET asks for one object, the files in a random order per thread.
Errors are wrk's (connect, read, write, timeout, any status but 2xx/3xx) and
those of a verifying prober that, beside wrk, fetches a request of the same
kind four times a second and checks every object in it (zstd frame, SHA-256 of
the content, every chunk asked for present and nothing else). The CPU time of
the server processes and of wrk is read from /proc around each run.

Usage: .venv/bin/python bench/seeder_load.py [--seconds 60] [--rounds 3] [--profiles mist,256k]
       [--connections 200] [--targets nginx,seeder1,seederN,accel,proxied] [--out FILE]
       [--before DIR --targets nginx,seeder1,before1,seederN,beforeN]   (DIR: `git archive` of an earlier commit)
       [--batch-mib 16]   (larger fetch requests than the client makes, to see what the per-request cost is)
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from client.scheduler import BATCH_BYTES, BATCH_PIECES as BATCH_CHUNKS  # noqa: E402
from shared import compression, pack  # noqa: E402
from shared.chunking import DEFAULT_PARAMS, chunk_bytes  # noqa: E402
from shared.chunkstore import DirectoryChunkStore  # noqa: E402
from shared.manifest import ChunkRef, FileEntry, Manifest  # noqa: E402
from shared.signing import Signer  # noqa: E402
from shared.tickets import READ, Ticket  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_OUT = REPO / "bench" / "results" / "seeder_load.md"
SNIPPET = REPO / "deploy" / "nginx" / "seeder-accel.conf"
SNIPPET_STORE = "/var/lib/mist/store/"
TARGET = 0.90
PROBE_INTERVAL = 0.25
WRK_TIMEOUT = "30s"
START_TIMEOUT = 30.0
GB = 1e9
PROFILES = {
    "mist": "objects as Mist's chunker cuts incompressible game data (FastCDC 16/64/256 KiB; "
            "game assets are mostly compressed already, so zstd keeps them at about their size)",
    "256k": "256 KiB objects, the file size of the issue's planning figure (nginx 2.2 GB/s)",
}
TARGETS = ("nginx", "seeder1", "seederN", "before1", "beforeN", "accel", "proxied")


class BenchError(RuntimeError):
    pass


# --- the store ---------------------------------------------------------------------------------


@dataclass
class Store:
    root: Path
    chunks: dict[str, tuple[int, int]]  # sha256 -> (content size, stored size)
    ticket: str
    public_key: str
    batch_bytes: int = BATCH_BYTES  # content per fetch request: the client's, unless --batch-mib says otherwise


def build_store(root: Path, profile: str, count: int, seed: int = 6) -> Store:
    """`count` objects in a DirectoryChunkStore, a manifest naming them all, and a read ticket for it."""
    store = DirectoryChunkStore(root, durable=False)
    rng = random.Random(seed)
    files: list[FileEntry] = []
    chunks: dict[str, tuple[int, int]] = {}
    while len(chunks) < count:
        data = rng.randbytes(8 * 1024 * 1024)
        if profile == "256k":
            step = 256 * 1024
            refs = [ChunkRef(hashlib.sha256(data[o:o + step]).hexdigest(), step) for o in range(0, len(data), step)]
            file_hash, size = hashlib.sha256(data).hexdigest(), len(data)
        else:
            chunked = chunk_bytes(data, DEFAULT_PARAMS)
            refs, file_hash, size = list(chunked.chunks), chunked.sha256, chunked.size
        refs = refs[: count - len(chunks)]
        if len(refs) < 1:
            break
        offset = 0
        for ref in refs:
            stored = compression.compress(data[offset: offset + ref.size], 1)
            store.put(ref.sha256, stored)
            chunks[ref.sha256] = (ref.size, len(stored))
            offset += ref.size
        if offset != size:  # the last file is cut short to make the count: hash what it holds
            file_hash, size = hashlib.sha256(data[:offset]).hexdigest(), offset
        files.append(FileEntry(f"data/{len(files):04d}.pak", size, False, file_hash, tuple(refs)))
    manifest = Manifest("bench", "1", DEFAULT_PARAMS, tuple(files))
    store.put(manifest.digest(), compression.compress(manifest.canonical_bytes()))
    signer = Signer.generate()
    ticket = Ticket("bench", READ, manifest.digest(), int(time.time()) + 24 * 3600).encode(signer)
    return Store(root, chunks, ticket, signer.public_key)


def object_path(h: str) -> str:
    return f"{h[:2]}/{h[2:4]}/{h}"


def warm(store: Store) -> None:
    """Read every object once, so every target starts from the page cache."""
    for h in store.chunks:
        (store.root / object_path(h)).read_bytes()


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(proc: subprocess.Popen[Any], port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port} within {START_TIMEOUT} s")


def spawn(cmd: list[str], log: Path, stack: ExitStack, code: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))} \
        if code else None
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True, env=env)

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    stack.callback(stop)
    return proc


def start_seeder(store: Store, processes: int, work: Path, stack: ExitStack, accel: bool = False,
                 code: Path | None = None) -> tuple[int, subprocess.Popen[bytes]]:
    """`code`: a checkout of other Mist code to run instead (put first on its PYTHONPATH)."""
    port = free_port()
    log = work / f"seeder-{port}.log"
    cmd = [str(BIN / "mist-seeder"), "--store", str(store.root), "--public-key", store.public_key,
           "--port", str(port), "--processes", str(processes)]
    if accel:
        cmd += ["--accel-redirect", "/_store/"]
    proc = spawn(cmd, log, stack, code)
    deadline = time.monotonic() + START_TIMEOUT
    while "listening on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"mist-seeder did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    return port, proc


def nginx_config(work: Path, store: Path, static_port: int, front_port: int, seeder_port: int) -> str:
    """nginx as commonly run (a worker per CPU, sendfile, keep-alive), the accel snippet in the front server."""
    snippet = SNIPPET.read_text().replace(SNIPPET_STORE, f"{store}/")
    temp = work / "nginx-temp"
    temp.mkdir(exist_ok=True)
    temps = " ".join(f"{k}_temp_path {temp}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""
worker_processes auto;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    default_type application/octet-stream;
    {temps}
    upstream mist_seeder {{ server 127.0.0.1:{seeder_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{static_port};
        location /store/ {{ alias {store}/; }}
    }}
    server {{
        listen 127.0.0.1:{front_port};
        {snippet}
    }}
}}
"""


def start_nginx(work: Path, store: Path, seeder_port: int, stack: ExitStack) -> tuple[int, int, subprocess.Popen[bytes]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    static_port, front_port = free_port(), free_port()
    conf = work / "nginx.conf"
    conf.write_text(nginx_config(work, store, static_port, front_port, seeder_port))
    log = work / "nginx.log"
    proc = spawn([nginx, "-c", str(conf), "-p", str(work)], log, stack)
    wait_port(proc, static_port, "nginx", log)
    wait_port(proc, front_port, "nginx", log)
    return static_port, front_port, proc


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (nginx's workers, the seeder's processes)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid, *(int(p) for p in out)]


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


# --- the requests -----------------------------------------------------------------------------


def fetch_batches(store: Store, rng: random.Random) -> list[list[str]]:
    """The store's chunks in random order, cut into requests as client/scheduler.py cuts them."""
    names = list(store.chunks)
    rng.shuffle(names)
    sizes = {h: store.chunks[h][0] for h in names}
    return list(pack.batches(names, sizes, store.batch_bytes, BATCH_CHUNKS))


LUA_COMMON = r"""
local requests = {}
local n = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function request()
  n = n % #requests + 1
  return requests[n]
end
function done(summary, latency, _)
  io.write(string.format('\nRESULT {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
local function shuffle(list)
  for i = #list, 2, -1 do
    local j = math.random(i)
    list[i], list[j] = list[j], list[i]
  end
end
"""


def lua_get(list_file: Path, ticket: str) -> str:
    headers = f'{{["Authorization"] = "Ticket {ticket}"}}' if ticket else "{}"
    return LUA_COMMON + f"""
function init(args)
  math.randomseed(id * 7919)
  local headers = {headers}
  for line in io.lines("{list_file}") do
    requests[#requests + 1] = wrk.format("GET", line, headers)
  end
  shuffle(requests)
end
"""


def lua_fetch(list_file: Path, path: str, ticket: str) -> str:
    return LUA_COMMON + f"""
function init(args)
  math.randomseed(id * 7919)
  local headers = {{["Authorization"] = "Ticket {ticket}", ["Content-Type"] = "application/octet-stream"}}
  for line in io.lines("{list_file}") do
    local body = line:gsub("..", function(c) return string.char(tonumber(c, 16)) end)
    requests[#requests + 1] = wrk.format("POST", "{path}", headers, body)
  end
  shuffle(requests)
end
"""


@dataclass
class Target:
    name: str
    label: str
    port: int
    kind: str  # "get" or "fetch"
    path: str  # URL prefix of a GET, or the fetch URL
    ticket: str
    pids: list[int]
    script: Path = Path()

    def get_path(self, h: str) -> str:
        return self.path + (object_path(h) if self.name == "nginx" else h)


def write_scripts(targets: list[Target], store: Store, work: Path) -> None:
    rng = random.Random(11)
    get_list = work / "get-{name}.txt"
    fetch_list = work / "fetch.txt"
    fetch_list.write_text("".join(pack.encode_hashes(b).hex() + "\n" for b in fetch_batches(store, rng)))
    for t in targets:
        if t.kind == "get":
            listing = Path(str(get_list).format(name=t.name))
            listing.write_text("".join(t.get_path(h) + "\n" for h in store.chunks))
            text = lua_get(listing, t.ticket)
        else:
            text = lua_fetch(fetch_list, t.path, t.ticket)
        t.script = work / f"{t.name}.lua"
        t.script.write_text(text)


# --- the prober -------------------------------------------------------------------------------


class Prober(threading.Thread):
    """Beside wrk, one request of the target's kind every PROBE_INTERVAL, every byte of its answer checked."""

    def __init__(self, target: Target, store: Store, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.target, self.store, self.stop = target, store, stop
        self.checked = 0
        self.errors: list[str] = []
        self.rng = random.Random(target.port)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.target.port, timeout=60)
        names = list(self.store.chunks)
        batches = fetch_batches(self.store, self.rng)
        while not self.stop.wait(PROBE_INTERVAL):
            try:
                if self.target.kind == "get":
                    self.check_get(conn, self.rng.choice(names))
                else:
                    self.check_fetch(conn, self.rng.choice(batches))
                self.checked += 1
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.target.port, timeout=60)
        conn.close()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Ticket {self.target.ticket}"} if self.target.ticket else {}

    def check_object(self, h: str, payload: bytes | memoryview) -> None:
        size = self.store.chunks[h][0]
        data = compression.decompress(payload, size, h)
        if hashlib.sha256(data).hexdigest() != h:
            raise ValueError(f"object {h[:12]} does not hash to its name")

    def check_get(self, conn: http.client.HTTPConnection, h: str) -> None:
        conn.request("GET", self.target.get_path(h), headers=self.headers())
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"GET {h[:12]} answered {response.status}: {body[:200]!r}")
        if len(body) != self.store.chunks[h][1]:
            raise ValueError(f"GET {h[:12]}: {len(body)} bytes, stored {self.store.chunks[h][1]}")
        self.check_object(h, body)

    def check_fetch(self, conn: http.client.HTTPConnection, batch: list[str]) -> None:
        conn.request("POST", self.target.path, body=pack.encode_hashes(batch),
                     headers={**self.headers(), "Content-Type": "application/octet-stream"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"fetch answered {response.status}: {body[:200]!r}")
        records = list(pack.iter_records(body))  # raises on a cut-off pack
        if [r.sha256 for r in records] != batch or any(r.kind != pack.CHUNK for r in records):
            raise ValueError("the pack does not hold exactly the chunks asked for")
        for record in records:
            self.check_object(record.sha256, record.payload)


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    target: str
    round: int
    seconds: float
    requests: int
    bytes: int
    errors: int
    error_detail: dict[str, int]
    p50_ms: float
    p99_ms: float
    server_cpu: float
    wrk_cpu: float
    probed: int
    load: tuple[float, float]
    objects: int = 0

    @property
    def gbps(self) -> float:
        return self.bytes / self.seconds / GB

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def drive(target: Target, store: Store, seconds: float, connections: int, threads: int, round_no: int,
          objects_per_request: float) -> Run:
    stop = threading.Event()
    prober = Prober(target, store, stop)
    load0 = os.getloadavg()[0]
    cpu0 = cpu_seconds(target.pids)
    wrk = subprocess.Popen(["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", WRK_TIMEOUT,
                            "-s", str(target.script), f"http://127.0.0.1:{target.port}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prober.start()
    out, err = wrk.communicate(timeout=seconds + 120)
    wrk_cpu = _child_cpu()
    cpu1 = cpu_seconds(target.pids)
    stop.set()
    prober.join(timeout=90)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if wrk.returncode != 0 or not lines:
        raise BenchError(f"wrk failed on {target.name} ({wrk.returncode}):\n{out}\n{err}")
    r = json.loads(lines[-1][7:])
    detail = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    if prober.errors:
        detail["probe"] = len(prober.errors)
        print(f"  probe errors on {target.name}: {prober.errors[:3]}", file=sys.stderr)
    return Run(target.name, round_no, r["duration_us"] / 1e6, r["requests"], r["bytes"], sum(detail.values()), detail,
               r["p50_us"] / 1000, r["p99_us"] / 1000, cpu1 - cpu0, wrk_cpu, prober.checked,
               (load0, os.getloadavg()[0]), int(r["requests"] * objects_per_request))


_wrk_cpu_seen = 0.0


def _child_cpu() -> float:
    """CPU seconds of the wrk that just ended (children's rusage grows by each reaped child)."""
    global _wrk_cpu_seen
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    spent, _wrk_cpu_seen = total - _wrk_cpu_seen, total
    return spent


# --- the report -------------------------------------------------------------------------------


@dataclass
class Profile:
    name: str
    store: Store
    targets: list[Target]
    runs: list[Run] = field(default_factory=list)
    objects_per_fetch: float = 0.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(profile: Profile, name: str) -> list[float]:
    by_round = {r.round: r for r in profile.runs if r.target == "nginx"}
    return [r.gbps / by_round[r.round].gbps for r in profile.runs if r.target == name and r.round in by_round]


def profile_table(profile: Profile) -> str:
    sizes = [s for _, s in profile.store.chunks.values()]
    lines = [
        f"### Profile `{profile.name}`: {PROFILES[profile.name]}",
        "",
        f"{len(sizes)} objects, {sum(sizes) / 1e6:.0f} MB stored, mean {statistics.mean(sizes) / 1024:.0f} KiB "
        f"(median {statistics.median(sizes) / 1024:.0f} KiB); a fetch request asks for "
        f"{profile.objects_per_fetch:.1f} of them on average.",
        "",
        "| target | requests/s | objects/s | GB/s | vs nginx (same round) | p50 ms | p99 ms | errors | "
        "server CPU s per GB | wrk CPU s per GB | bodies verified |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in profile.targets:
        runs = [r for r in profile.runs if r.target == t.name]
        if not runs:
            continue
        rr = ratios(profile, t.name)
        ratio = "1.00" if t.name == "nginx" else f"**{median(rr):.2f}** ({min(rr):.2f}-{max(rr):.2f})"
        errors = sum(r.errors for r in runs)
        lines.append(
            f"| {t.label} | {median([r.rps for r in runs]):,.0f} | {median([r.objects / r.seconds for r in runs]):,.0f} "
            f"| {median([r.gbps for r in runs]):.2f} | {ratio} | {median([r.p50_ms for r in runs]):.0f} "
            f"| {median([r.p99_ms for r in runs]):.0f} | {errors} "
            f"| {median([r.server_cpu / (r.bytes / GB) for r in runs]):.2f} "
            f"| {median([r.wrk_cpu / (r.bytes / GB) for r in runs]):.2f} | {sum(r.probed for r in runs)} |")
    lines += ["", "Every run (GB/s, in the order run; load average of the machine at start and end):", "",
              "| round | target | GB/s | requests | errors | p99 ms | server CPU s | wrk CPU s | load |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in profile.runs:
        detail = f"{r.errors} {r.error_detail}" if r.errors else "0"
        lines.append(f"| {r.round} | {r.target} | {r.gbps:.2f} | {r.requests:,} | {detail} | {r.p99_ms:.0f} "
                     f"| {r.server_cpu:.1f} | {r.wrk_cpu:.1f} | {r.load[0]:.1f} / {r.load[1]:.1f} |")
    return "\n".join(lines)


def report(profiles: list[Profile], args: argparse.Namespace, command: str, processes: int) -> str:
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    head = [
        "# The seeder under load (issue 6)",
        "",
        f"Command: `{command}`",
        "",
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, {os.cpu_count()} CPUs shared with other jobs "
        f"(see the load column), Python {sys.version.split()[0]}, {nginx_version}, {wrk_version.split(' [')[0]}. "
        f"{args.connections} connections, wrk -t{args.threads}, {args.seconds:g} s per run, {args.rounds} rounds; "
        f"medians over the rounds, and each target's ratio to nginx in the same round (median, min-max). "
        f"Seeder xN is {processes} processes. Target: GB/s at least {TARGET:.0%} of nginx, zero errors.",
        "",
        "Errors: wrk's socket errors and statuses other than 2xx/3xx, plus the prober's (a body that is cut "
        "short, a pack without its END record or with other chunks than asked, an object that does not "
        "decompress and hash to its name). Latency is per request: one object for nginx and the GETs, a whole "
        "pack for a fetch.",
        "",
    ]
    return "\n".join(head + [profile_table(p) + "\n" for p in profiles])


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--profiles", default="mist,256k")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)), help="N of seeder xN")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--batch-mib", type=float, default=BATCH_BYTES / 2**20,
                        help="chunk content per fetch request (default: the client's, client/scheduler.py)")
    parser.add_argument("--before", type=Path, help="a checkout of earlier Mist code (git archive of a commit): "
                        "targets before1 and beforeN run its seeder, so a change is measured against it in the same run")
    args = parser.parse_args()
    names = [t for t in args.targets.split(",") if t]
    if "nginx" not in names:
        names.insert(0, "nginx")
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is needed: apt-get install {'wrk' if tool == 'wrk' else 'nginx-light'}")
    command = " ".join([".venv/bin/python bench/seeder_load.py", shlex.join(sys.argv[1:])]).strip()
    profiles: list[Profile] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="mist-load-") as tmp:
        os.chmod(tmp, 0o755)  # nginx's workers run as another user
        for pname in args.profiles.split(","):
            work = Path(tmp) / pname
            work.mkdir()
            print(f"[{pname}] building {args.objects} objects", file=sys.stderr, flush=True)
            store = build_store(work / "store", pname, args.objects)
            warm(store)
            store.batch_bytes = int(args.batch_mib * 2**20)
            profile = Profile(pname, store, [])
            batches = fetch_batches(store, random.Random(1))
            profile.objects_per_fetch = len(store.chunks) / len(batches)
            one_port, one = start_seeder(store, 1, work, stack)
            many_port, many = start_seeder(store, args.processes, work, stack, accel=True)
            static_port, front_port, nginx = start_nginx(work, store.root, many_port, stack)
            before: dict[str, Target] = {}
            if args.before:  # the same seeders from other code, for a before/after ratio measured in the same run
                for name, count in (("before1", 1), ("beforeN", args.processes)):
                    if name in names:
                        port, proc = start_seeder(store, count, work, stack, code=args.before)
                        before[name] = Target(name, f"seeder x{count} from {args.before.name}, POST /fetch", port,
                                              "fetch", "/seeder/fetch", store.ticket, process_tree(proc.pid))
            all_targets = {**before,
                "nginx": Target("nginx", "nginx, static GET of the store's files", static_port, "get", "/store/", "",
                                process_tree(nginx.pid)),
                "seeder1": Target("seeder1", "seeder x1, POST /fetch", one_port, "fetch", "/seeder/fetch", store.ticket,
                                  process_tree(one.pid)),
                "seederN": Target("seederN", f"seeder x{args.processes}, POST /fetch", many_port, "fetch",
                                  "/seeder/fetch", store.ticket, process_tree(many.pid)),
                "accel": Target("accel", f"nginx + seeder x{args.processes}, GET /chunk (X-Accel-Redirect)", front_port,
                                "get", "/seeder/chunk/", store.ticket, process_tree(nginx.pid) + process_tree(many.pid)),
                "proxied": Target("proxied", f"nginx + seeder x{args.processes}, POST /fetch proxied", front_port,
                                  "fetch", "/seeder/fetch", store.ticket,
                                  process_tree(nginx.pid) + process_tree(many.pid)),
            }
            profile.targets = [all_targets[n] for n in TARGETS if n in names and n in all_targets]
            write_scripts(profile.targets, store, work)
            for t in profile.targets:  # warm-up: manifests parsed, connections made, nothing recorded
                drive(t, store, min(3, args.seconds), args.connections, args.threads, 0, 1)
            for round_no in range(1, args.rounds + 1):
                shift = (round_no - 1) % len(profile.targets)
                for t in profile.targets[shift:] + profile.targets[:shift]:
                    per = profile.objects_per_fetch if t.kind == "fetch" else 1
                    run = drive(t, store, args.seconds, args.connections, args.threads, round_no, per)
                    profile.runs.append(run)
                    print(f"[{pname}] round {round_no} {t.name}: {run.gbps:.2f} GB/s, {run.rps:,.0f} req/s, "
                          f"p99 {run.p99_ms:.0f} ms, errors {run.errors}, server CPU {run.server_cpu:.1f} s, "
                          f"load {run.load[0]:.1f}", file=sys.stderr, flush=True)
            profiles.append(profile)
            text = report(profiles, args, command, args.processes)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
