"""Install and update through the real Mist commands, against plain archives served by nginx.

The chunk-size study (bench/chunk_sizes.py) estimated update sizes from a model
of Mist. This script measures the product itself, end to end, on the same real
release pairs: a real `mist-server`, the admin pushing both builds with
`mistpipe`, and a friend installing the old build and updating to the new one
with `mist`. The figures that matter to a friend are how many bytes an update
downloads, compared with the simplest alternative (downloading the whole new
build as one .tar.zst -19), and how fast a fresh install runs, compared with
the fastest plain alternative (`curl | zstd -d | tar -x` from nginx, the
archive at Mist's chunk compression level). Every baseline is measured in the
same run, on the same machine, so the ratios are fair even if the machine is
busy or slow.

Usage: .venv/bin/python bench/update_bench.py [--pairs a,b|all] [--out FILE]
       .venv/bin/python bench/update_bench.py --sizes 10,100,1000,2000 [--out FILE]
       .venv/bin/python bench/update_bench.py --sizes 100 --hold

`--sizes` measures fresh installs only, on synthetic game builds of those many
MB (a few large packs, half of them compressible, and many small files), four
ways in alternation: `curl | zstd -d | tar -x`, the same followed by `sync -f`
(its files on disk when it ends, as Mist's are), `mist install` with no daemon,
and `mist install` handed to a running `mist daemon`. With `--hold` it sets the
same up, prints the four ways as whole shell commands (each first removes what
its last run left) for an outside timer to alternate, and on SIGINT or SIGTERM
checks every tree they left against the build. (Held, the daemon's install is
of a folder emptied outside Mist, a repair that fetches every chunk; the timed
runs uninstall between installs, so theirs is a first install.)
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import platform
import pwd
import grp
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import PAIR_SPECS, Pair, corpus_pairs  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin: mist, mistpipe, mist-server live beside its python
NGINX = "/usr/sbin/nginx"
DEFAULT_OUT = REPO / "bench" / "results" / "update_bench.md"
PACKAGES = ("client", "shared", "seeder", "tracker", "mistpipe")  # what `mist` and the servers import from here
# One pair per kind of update, small enough for ~10 minutes on 2 cores;
# `--pairs all` adds the two large executables (biome, libreoffice-core).
DEFAULT_PAIRS = ("esbuild", "panda3d", "browser-compat-data", "openjdk-17-jre", "panda3d-jump")
ADMIN_PASSWORD = "bench-admin-secret"
FRIEND_PASSWORD = "bench-friend-secret"
FRIEND = "friend"
SERVED_LEVEL = 9  # Mist's default chunk level (shared/compression.py), so both sides decompress alike
REPEATS = 2  # the page cache cannot be dropped reliably; the better of two runs is reported
COMMAND_TIMEOUT = 900
MB = 1_000_000


# --- processes ------------------------------------------------------------------------------


class BenchError(RuntimeError):
    """Something in the run failed; the message says which command and what it printed."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the tiny race is harmless on a bench machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_group(proc: subprocess.Popen[Any]) -> None:
    """Stop a child started in its own session, and everything it spawned (nginx workers,
    server helpers): SIGTERM to its process group, then SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    try:  # workers can outlive a master that died; kill whatever is left of the group
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class StderrTail:
    """Reads a child's stderr on a thread, so a chatty server never blocks on a full pipe,
    and signals when a line holding `ready` appears (the daemon's lines begin with a time stamp)."""

    def __init__(self, proc: subprocess.Popen[str], ready: str) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._prefix = ready
        self._thread = threading.Thread(target=self._drain, args=(proc,), daemon=True)
        self._thread.start()

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines = (self.lines + [line])[-200:]
            if self._prefix in line:
                self.ready.set()

    def text(self) -> str:
        return "".join(self.lines[-40:])


def start_mist_server(data: Path, port: int, stack: ExitStack) -> str:
    """A real embedded `mist-server`; returns its URL once it says it is running (not after a fixed sleep)."""
    env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD}
    proc = subprocess.Popen(
        [str(BIN / "mist-server"), "--data", str(data), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=env, text=True, start_new_session=True,
    )
    stack.callback(stop_group, proc)
    tail = StderrTail(proc, "Mist is running at")
    deadline = time.monotonic() + 60
    while not tail.ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"mist-server did not start (exit {proc.poll()}):\n{tail.text()}")
    return f"http://127.0.0.1:{port}"


def nginx_config(prefix: Path, root: Path, port: int) -> str:
    """The smallest config that serves `root` as static files with sendfile. Every path nginx
    writes is inside `prefix`; as root, workers keep our user so they can read a 0700 temp dir."""
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    temps = "\n".join(f"    {kind}_temp_path {prefix}/tmp/{kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}worker_processes 1;\n"
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    access_log off;\n"
        "    sendfile on;\n"
        "    default_type application/octet-stream;\n"
        f"{temps}\n"
        f"    server {{ listen 127.0.0.1:{port}; root {root}; }}\n"
        "}\n"
    )


def wait_for_port(proc: subprocess.Popen[Any], port: int, what: str, log: Path) -> None:
    """nginx prints nothing when ready, so wait until its port accepts a connection."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    text = log.read_text() if log.exists() else ""
    raise BenchError(f"{what} did not start listening on {port} (exit {proc.poll()}):\n{text}")


def start_nginx(prefix: Path, root: Path, stack: ExitStack) -> str:
    """nginx as a child process (daemon off) serving `root`; returns its base URL."""
    port = free_port()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / kind).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, root, port))
    log = prefix / "error.log"
    proc = subprocess.Popen(
        [NGINX, "-e", str(log), "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack.callback(stop_group, proc)
    wait_for_port(proc, port, "nginx", log)
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Person:
    """One user on one machine: a MIST_HOME and a password, passed to `mist`/`mistpipe` the way a
    script would (MIST_PASSWORD), so several independent clients share this machine."""

    home: Path
    password: str

    def run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, "MIST_HOME": str(self.home), "MIST_PASSWORD": self.password, **(env or {})}
        full_env.pop("MIST_CRASH_AT", None)  # a fault-injection switch from the tests must never leak in
        cmd = [str(BIN / tool), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                                stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise BenchError(f"`{shlex.join([tool, *args])}` failed (exit {result.returncode}):\n"
                             f"{result.stderr[-3000:]}{result.stdout[-1000:]}")
        return result.stdout

    def json(self, tool: str, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.run(tool, *args, "--json")))

    def timed_json(self, tool: str, *args: str) -> tuple[dict[str, Any], float]:
        """The command's JSON and the wall time around the whole subprocess (start-up included,
        as for the curl pipeline it is compared with)."""
        started = time.perf_counter()
        out = self.json(tool, *args)
        return out, time.perf_counter() - started


# --- builds and trees -----------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """A build as Mist ships it: regular files only (symlinks skipped, as Mist refuses them;
    the Debian packages hold a few), hard-linked from the corpus cache so staging costs no copy."""

    root: Path
    files: int
    bytes: int
    symlinks_skipped: int


def stage_build(src: Path, dest: Path) -> Build:
    """Mirror the regular files of `src` into `dest`; every figure below is about this tree."""
    files = total = skipped = 0
    for dirpath, dirs, names in os.walk(src):
        dirs.sort()
        rel = Path(dirpath).relative_to(src)
        for name in sorted(names + [d for d in dirs if Path(dirpath, d).is_symlink()]):
            source = Path(dirpath, name)
            if source.is_symlink():
                skipped += 1
                continue
            if not source.is_file():
                continue
            target = dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another file system: copy instead
                shutil.copy2(source, target)
            files += 1
            total += source.stat().st_size
    return Build(dest, files, total, skipped)


def regular_files(root: Path) -> dict[str, Path]:
    """Relative path -> file, for every regular file of a tree (symlinks count as a difference)."""
    out: dict[str, Path] = {}
    for dirpath, dirs, names in os.walk(root):
        for name in names + [d for d in dirs if Path(dirpath, d).is_symlink()]:
            p = Path(dirpath, name)
            out[p.relative_to(root).as_posix()] = p
    return out


def same_bytes(a: Path, b: Path) -> bool:
    """Compare two files' bytes in 1 MiB blocks (filecmp would trust matching stat signatures)."""
    if a.is_symlink() or b.is_symlink() or a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def tree_differences(expected: Path, actual: Path) -> list[str]:
    """Why `actual` is not bit-identical to `expected` (files, bytes, executable bit); [] if it is."""
    want, got = regular_files(expected), regular_files(actual)
    problems = [f"missing {p}" for p in sorted(set(want) - set(got))]
    problems += [f"extra {p}" for p in sorted(set(got) - set(want))]
    for rel in sorted(set(want) & set(got)):
        if not same_bytes(want[rel], got[rel]):
            problems.append(f"bytes differ: {rel}")
        elif bool(want[rel].stat().st_mode & 0o111) != bool(got[rel].stat().st_mode & 0o111):
            problems.append(f"executable bit differs: {rel}")
    return problems


def check_tree(expected: Path, actual: Path, what: str) -> None:
    problems = tree_differences(expected, actual)
    if problems:
        raise BenchError(f"{what}: tree differs from the build ({len(problems)} problems): {problems[:10]}")


def run_pipeline(commands: list[list[str]], timeout: float = COMMAND_TIMEOUT) -> None:
    """Run `a | b | c` without a shell, so every stage is our child and can be killed on failure."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cmd in commands:
            stdin = procs[-1].stdout if procs else subprocess.DEVNULL
            procs.append(subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            if len(procs) > 1 and procs[-2].stdout is not None:
                procs[-2].stdout.close()  # so the writer sees SIGPIPE if the reader dies
        _out, _err = procs[-1].communicate(timeout=timeout)
        errors = []
        for cmd, proc in zip(commands, procs):
            code = proc.wait(timeout=timeout)
            if code != 0:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                errors.append(f"`{shlex.join(cmd)}` exited {code}: {err[-1000:]}{_err.decode(errors='replace')[-500:]}")
        if errors:
            raise BenchError("pipeline failed:\n" + "\n".join(errors))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()


def tar_zst(build: Build, out: Path, level: int) -> int:
    """The no-chunking baseline: the whole build as one tar, zstd on two threads; returns its size."""
    run_pipeline([
        ["tar", "-cf", "-", "--sort=name", "-C", str(build.root), "."],
        ["zstd", f"-{level}", "-T2", "-q", "-f", "-o", str(out)],
    ])
    return out.stat().st_size


def curl_extract_seconds(url: str, dest: Path, durable: bool = False) -> float:
    """Wall time of the plain install a friend could do without Mist: curl | zstd -d | tar -x; `durable`: then
    `sync -f` (syncfs of the folder's filesystem), the one wait Mist makes before its swap, so the pipeline's
    files are on disk too when it ends, as Mist's are."""
    dest.mkdir(parents=True)
    started = time.perf_counter()
    run_pipeline([["curl", "-sSf", url], ["zstd", "-d", "-q", "-c"], ["tar", "-x", "-C", str(dest)]])
    if durable:
        subprocess.run(["sync", "-f", str(dest)], check=True)
    return time.perf_counter() - started


# --- the measurements -----------------------------------------------------------------------


@dataclass
class Row:
    """Everything measured for one pair."""

    pair: str
    kind: str
    build: Build
    update: dict[str, Any] = field(default_factory=dict)
    update_wall: float = 0.0
    tar19: int = 0
    tar9: int = 0
    tar3: int = 0
    mist_install: list[float] = field(default_factory=list)
    mist_install_downloaded: int = 0
    mist_install_reported: list[float] = field(default_factory=list)
    curl_install: list[float] = field(default_factory=list)

    @property
    def mist_mbps(self) -> float:
        return self.build.bytes / MB / min(self.mist_install)

    @property
    def curl_mbps(self) -> float:
        return self.build.bytes / MB / min(self.curl_install)


def version_label(version: str) -> str:
    """A release's version as a Mist version string (Debian's epoch colon and tilde are not allowed)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", version)


class Bench:
    """One server and one admin for the whole run; a new client home (same friend account) for every
    update and every fresh install, so no measurement reuses what another left on disk."""

    def __init__(self, work: Path, stack: ExitStack) -> None:
        self.work = work
        self.url = start_mist_server(work / "server", free_port(), stack)
        self.admin = Person(work / "admin", ADMIN_PASSWORD)
        self.admin.run("mistpipe", "login", self.url, "--user", "admin")
        self.admin.run("mistpipe", "user", "add", FRIEND, env={"MIST_PASSWORD": FRIEND_PASSWORD})
        self.served = work / "served"
        self.served.mkdir()
        self.nginx_url = start_nginx(work / "nginx", self.served, stack)
        self._staged: dict[Path, Build] = {}
        self._archives: dict[str, tuple[int, int, int]] = {}
        self._scratch = 0

    def new_client(self, name: str) -> Person:
        """A friend's login from a new MIST_HOME: no install database, nothing on disk to reuse."""
        person = Person(self.work / "homes" / name, FRIEND_PASSWORD)
        person.run("mist", "login", self.url, "--user", FRIEND)
        return person

    def stage(self, src: Path) -> Build:
        """Stage each corpus tree once (panda3d 1.10.16 is the new build of two pairs)."""
        if src not in self._staged:
            self._staged[src] = stage_build(src, self.work / "builds" / str(len(self._staged)))
        return self._staged[src]

    def scratch(self, name: str) -> Path:
        """A new folder name for one install, so no run writes over another's files."""
        self._scratch += 1
        return self.work / "scratch" / f"{self._scratch}-{name}"

    def measure(self, pair: Pair, say: Callable[[str], None]) -> Row:
        """All figures of one pair, logging how long each phase took (the run has a time budget)."""
        spec = next(s for s in PAIR_SPECS if s.name == pair.name)
        old, new = self.stage(pair.old_dir), self.stage(pair.new_dir)
        old_v, new_v = version_label(spec.old.version), version_label(spec.new.version)
        row = Row(pair.name, pair.kind, new)
        phases: list[tuple[str, Callable[[], None]]] = [
            ("push", lambda: self.push(pair.name, spec.why, old, old_v, new, new_v)),
            ("update", lambda: self.update(row, pair.name, old_v, new_v)),
            ("archives", lambda: self.baselines(row)),
            ("installs", lambda: self.installs(row, pair.name, new_v)),
        ]
        for name, phase in phases:
            started = time.perf_counter()
            phase()
            say(f"{pair.name}: {name} {time.perf_counter() - started:.1f} s")
        return row

    def push(self, game: str, why: str, old: Build, old_v: str, new: Build, new_v: str) -> None:
        self.admin.run("mistpipe", "new-game", game, "--title", why[:80])
        for build, version in ((old, old_v), (new, new_v)):
            pushed = self.admin.json("mistpipe", "push", game, str(build.root), "--version", version)
            if pushed["files"] != build.files or pushed["bytes_total"] != build.bytes:
                raise BenchError(f"push {game} {version} reported {pushed['files']} files/{pushed['bytes_total']} B, "
                                 f"the folder holds {build.files}/{build.bytes}")

    def update(self, row: Row, game: str, old_v: str, new_v: str) -> None:
        """The friend installs the old build, then updates to the new one; the tree must then be the new build.
        Each pair gets its own MIST_HOME: Mist reuses chunks from every game installed in a home, and
        panda3d-jump's new build is panda3d's new build, which would make that update free."""
        friend = self.new_client(f"{game}-update")
        target = self.scratch(f"{game}-update")
        friend.json("mist", "install", game, "--dir", str(target), "--version", old_v)
        row.update, row.update_wall = friend.timed_json("mist", "update", game, "--to", new_v)
        if row.update.get("version") != new_v:
            raise BenchError(f"mist update {game} --to {new_v} reported version {row.update.get('version')}")
        check_tree(row.build.root, target, f"mist update {game} {old_v} -> {new_v}")
        shutil.rmtree(target)
        shutil.rmtree(friend.home)

    def baselines(self, row: Row) -> None:
        """Sizes of the whole new build as .tar.zst (-19 as the size reference, -3 for scale,
        -9 is the one nginx serves), then the curl | zstd | tar install, twice. The archives are
        made once per build: -19 is the slowest step of the run and panda3d's new build serves two pairs."""
        name = self.archives(row)
        for _ in range(REPEATS):
            dest = self.scratch(f"{row.pair}-curl")
            row.curl_install.append(curl_extract_seconds(f"{self.nginx_url}/{name}", dest))
            check_tree(row.build.root, dest, f"curl | zstd | tar of {row.pair}")
            shutil.rmtree(dest)

    def archives(self, row: Row) -> str:
        """Fill in the archive sizes of the row's build and return the served file's name."""
        key = row.build.root.name
        if key not in self._archives:
            sizes = tuple(tar_zst(row.build, self.work / f"{key}-{level}.tar.zst", level) for level in (19, 3))
            served = tar_zst(row.build, self.served / f"{key}.tar.zst", SERVED_LEVEL)
            self._archives[key] = (sizes[0], sizes[1], served)
        row.tar19, row.tar3, row.tar9 = self._archives[key]
        return f"{key}.tar.zst"

    def installs(self, row: Row, game: str, new_v: str) -> None:
        """A fresh `mist install` of the new build into an empty folder from a new MIST_HOME, twice."""
        for i in range(REPEATS):
            client = self.new_client(f"{game}-fresh{i}")
            dest = self.scratch(f"{game}-fresh")
            out, seconds = client.timed_json("mist", "install", game, "--dir", str(dest), "--version", new_v)
            check_tree(row.build.root, dest, f"fresh mist install {game} {new_v}")
            row.mist_install.append(seconds)
            row.mist_install_reported.append(float(out["seconds"]))
            row.mist_install_downloaded = int(out["bytes_downloaded"])
            shutil.rmtree(dest)
            shutil.rmtree(client.home)


# --- synthetic builds: fresh installs only ---------------------------------------------------------


def synthetic_build(root: Path, megabytes: int, seed: int = 1) -> Build:
    """A game-like build of about `megabytes` MB: 70% in packs of up to 128 MB, every other one random (as
    compressed textures and audio are) and the rest of 16 symbols (about 2:1 under zstd, with no long-range
    repeats to flatter one big archive), 30% in files of 4 KB-1 MB; deterministic for a seed."""
    rng = random.Random(seed)
    total = megabytes * MB
    symbols = bytes.maketrans(bytes(range(256)), bytes(b"etaoinshrdlucmfw"[i % 16] for i in range(256)))

    def content(size: int, compressible: bool) -> bytes:
        data = rng.randbytes(size)
        return data.translate(symbols) if compressible else data

    packs, left, i = int(total * 0.7), total, 0
    pack_size = max(4 * MB, min(128 * MB, packs // 4))
    while packs > 0:
        size = min(packs, pack_size)
        path = root / "data" / f"pack{i:02d}.pak"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for at in range(0, size, 16 * MB):
                f.write(content(min(16 * MB, size - at), i % 2 == 0))
        packs, left, i = packs - size, left - size, i + 1
    j = 0
    while left > 0:
        size = min(left, rng.choice((4_000, 20_000, 90_000, 300_000, 1_000_000)))
        path = root / "assets" / f"area{j % 23:02d}" / f"asset{j:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content(size, j % 3 != 0))
        left, j = left - size, j + 1
    files = regular_files(root)
    return Build(root, len(files), sum(p.stat().st_size for p in files.values()), 0)


@dataclass
class SizeRow:
    """Fresh installs of one synthetic build, each way several times (alternating)."""

    build: Build
    curl: list[float] = field(default_factory=list)
    curl_sync: list[float] = field(default_factory=list)  # the pipeline, then syncfs: its files on disk at the end
    mist: list[float] = field(default_factory=list)
    daemon: list[float] = field(default_factory=list)
    mist_reported: list[float] = field(default_factory=list)
    downloaded: int = 0
    archive: int = 0

    def mbps(self, runs: list[float]) -> float:
        return self.build.bytes / MB / min(runs)


def start_daemon(person: Person, stack: ExitStack) -> None:
    """`mist daemon` for the person's home, sharing off (nobody else is online); returns once it listens."""
    env = {**os.environ, "MIST_HOME": str(person.home), "MIST_PASSWORD": person.password}
    env.pop("MIST_CRASH_AT", None)
    person.run("mist", "share", "off")
    proc = subprocess.Popen([str(BIN / "mist"), "daemon"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env, text=True, start_new_session=True)
    stack.callback(stop_group, proc)
    tail = StderrTail(proc, "mist daemon for")
    deadline = time.monotonic() + 60
    while not tail.ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"mist daemon did not start (exit {proc.poll()}):\n{tail.text()}")


def measure_size(bench: Bench, megabytes: int, repeats: int, stack: ExitStack, say: Callable[[str], None]) -> SizeRow:
    game = f"synthetic{megabytes}"
    started = time.perf_counter()
    build = synthetic_build(bench.work / "builds" / game, megabytes, seed=megabytes)
    bench.admin.run("mistpipe", "new-game", game, "--title", f"Synthetic {megabytes} MB")
    bench.admin.json("mistpipe", "push", game, str(build.root), "--version", "1")
    row = SizeRow(build)
    row.archive = tar_zst(build, bench.served / f"{game}.tar.zst", SERVED_LEVEL)
    say(f"{game}: made, pushed and archived in {time.perf_counter() - started:.1f} s")
    with ExitStack() as daemons:
        through = bench.new_client(f"{game}-daemon")
        start_daemon(through, daemons)
        for i in range(repeats):
            dest = bench.scratch(f"{game}-curl")
            row.curl.append(curl_extract_seconds(f"{bench.nginx_url}/{game}.tar.zst", dest))
            check_tree(build.root, dest, f"curl | zstd | tar of {game}")
            shutil.rmtree(dest)
            row.curl_sync.append(curl_extract_seconds(f"{bench.nginx_url}/{game}.tar.zst", dest, durable=True))
            check_tree(build.root, dest, f"curl | zstd | tar; sync of {game}")
            shutil.rmtree(dest)
            client = bench.new_client(f"{game}-fresh{i}")
            dest = bench.scratch(f"{game}-fresh")
            out, seconds = client.timed_json("mist", "install", game, "--dir", str(dest), "--version", "1")
            check_tree(build.root, dest, f"fresh mist install of {game}")
            row.mist.append(seconds)
            row.mist_reported.append(float(out["seconds"]))
            row.downloaded = int(out["bytes_downloaded"])
            shutil.rmtree(dest)
            shutil.rmtree(client.home)
            dest = bench.scratch(f"{game}-daemon")
            out, seconds = through.timed_json("mist", "install", game, "--dir", str(dest), "--version", "1")
            check_tree(build.root, dest, f"mist install of {game} through the daemon")
            row.daemon.append(seconds)
            through.run("mist", "uninstall", game)
            if dest.exists():
                raise BenchError(f"uninstalling {game} left {dest}")
    say(f"{game}: curl {runs(row.curl)} s, curl then sync {runs(row.curl_sync)} s, mist {runs(row.mist)} s, "
        f"through the daemon {runs(row.daemon)} s")
    shutil.rmtree(build.root)
    return row


def sizes_table(rows: list[SizeRow]) -> str:
    lines = [
        "| build MB | files | .tar.zst -9 MB | Mist downloaded MB | curl\\|zstd\\|tar MB/s | then sync MB/s "
        "| `mist install` MB/s | ratio | through the daemon MB/s | ratio | ratio to the synced pipeline "
        "| curl s (runs) | then sync s (runs) | mist s (runs) | its JSON seconds | daemon s (runs) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for r in rows:
        curl, synced = r.mbps(r.curl), r.mbps(r.curl_sync)
        lines.append(
            f"| {r.build.bytes / MB:.0f} | {r.build.files} | {mb(r.archive)} | {mb(r.downloaded)} | {curl:.0f} | {synced:.0f} "
            f"| {r.mbps(r.mist):.0f} | {r.mbps(r.mist) / curl:.2f} | {r.mbps(r.daemon):.0f} | {r.mbps(r.daemon) / curl:.2f} "
            f"| {r.mbps(r.daemon) / synced:.2f} | {runs(r.curl)} | {runs(r.curl_sync)} | {runs(r.mist)} "
            f"| {runs(r.mist_reported)} | {runs(r.daemon)} |"
        )
    return "\n".join(lines)


def sizes_report(rows: list[SizeRow], command: str, seconds: float, loads: tuple[float, float], repeats: int) -> str:
    notes = [
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
        f"{tool_version(['zstd', '--version'])}, {tool_version([NGINX, '-v'])}",
        f"- run time: {seconds:.0f} s; 1-minute load average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end",
        "- synthetic builds (bench/update_bench.py `synthetic_build`): 70% in packs of up to 256 MB, every other one "
        "compressible, 30% in files of 4 KB-1 MB; one `mist-server` (embedded) on loopback serves Mist, nginx the "
        f"`zstd -{SERVED_LEVEL}` .tar.zst",
        f"- each way ran {repeats} times, alternating curl, curl then `sync -f` (the pipeline's files on disk when "
        "it ends, as Mist's are after its one syncfs), `mist install` (no daemon: a new MIST_HOME each time), "
        "`mist install` handed to a running `mist daemon` (then `mist uninstall`); MB/s = build bytes / the best "
        "wall time around the whole command; ratio = Mist / curl. Every tree was compared byte for byte",
    ]
    return ("# Fresh installs against `curl | zstd -d | tar -x`\n\n" + "\n".join(notes) + "\n\n"
            + sizes_table(rows) + "\n")


# --- held open: the same installs as whole commands, for an outside timer ----------------------------


@dataclass(frozen=True)
class HeldSize:
    """One pushed synthetic build and the four commands that install it fresh, each starting by removing
    what its previous run left (so an outside timer can run them again and again, alternating)."""

    megabytes: int
    build: Build
    trees: dict[str, Path]  # way -> the folder its command installs into
    commands: dict[str, list[str]]  # way -> argv


def held_size(bench: Bench, megabytes: int, stack: ExitStack, say: Callable[[str], None]) -> HeldSize:
    """Make, push and archive one synthetic build; log in a home for the no-daemon runs (each run first removes its
    install database: a fresh install that keeps the login, whose tokens refresh and rotate as a friend's do)
    and a home with a running daemon."""
    game = f"synthetic{megabytes}"
    build = synthetic_build(bench.work / "builds" / game, megabytes, seed=megabytes)
    bench.admin.run("mistpipe", "new-game", game, "--title", f"Synthetic {megabytes} MB")
    bench.admin.json("mistpipe", "push", game, str(build.root), "--version", "1")
    tar_zst(build, bench.served / f"{game}.tar.zst", SERVED_LEVEL)
    fresh = bench.new_client(f"{game}-fresh")
    through = bench.new_client(f"{game}-daemon")
    start_daemon(through, stack)
    trees = {way: bench.work / "held" / f"{game}-{way}" for way in ("curl", "curl-sync", "mist", "daemon")}
    env = f"MIST_PASSWORD={shlex.quote(FRIEND_PASSWORD)}"
    mist = shlex.quote(str(BIN / "mist"))
    commands = {
        "curl": f"rm -rf {trees['curl']} && mkdir -p {trees['curl']} && curl -sSf {bench.nginx_url}/{game}.tar.zst "
                f"| zstd -d -q -c | tar -x -C {trees['curl']}",
        # The same, then its files on disk (syncfs of their filesystem), as Mist's are when it ends.
        "curl-sync": f"rm -rf {trees['curl-sync']} && mkdir -p {trees['curl-sync']} && curl -sSf "
                     f"{bench.nginx_url}/{game}.tar.zst | zstd -d -q -c | tar -x -C {trees['curl-sync']} "
                     f"&& sync -f {trees['curl-sync']}",
        "mist": f"rm -rf {trees['mist']} {fresh.home}/client.db* {fresh.home}/catalog.json {fresh.home}/locks && "
                f"MIST_HOME={fresh.home} {env} exec {mist} install {game} --dir {trees['mist']} --version 1 --json",
        # The daemon's home keeps the game in its install database (`mist uninstall` would start a whole client):
        # the folder is emptied instead, so each install finds nothing there and fetches every chunk (a repair).
        "daemon": f"rm -rf {trees['daemon']} && MIST_HOME={through.home} {env} exec {mist} install {game} "
                  f"--dir {trees['daemon']} --version 1 --json",
    }
    say(f"{game}: {build.files} files, {build.bytes / MB:.0f} MB, pushed and archived")
    return HeldSize(megabytes, build, trees, {way: ["sh", "-c", text] for way, text in commands.items()})


def hold(bench: Bench, megabytes: list[int], stack: ExitStack, say: Callable[[str], None]) -> None:
    """Print each size's four commands (argv as one shell line) and wait for SIGINT or SIGTERM; then compare
    every tree the commands left with its build, byte for byte, so a timing never stands for a wrong install."""
    held = []
    for size in megabytes:  # each size's commands as soon as it is ready: the small ones can be timed meanwhile
        held.append(h := held_size(bench, size, stack, say))
        for way, argv in h.commands.items():
            print(f"{h.megabytes} {way}: {shlex.join(argv)}", flush=True)
    print("ready: run the commands above (any timer); SIGINT or SIGTERM checks the trees and stops", flush=True)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    for h in held:
        for way, tree in h.trees.items():
            if tree.exists():
                check_tree(h.build.root, tree, f"{way} install of synthetic{h.megabytes}")
                say(f"synthetic{h.megabytes} {way}: the tree is the build")
            else:
                say(f"synthetic{h.megabytes} {way}: never run")


# --- report ---------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / MB:.2f}"


def main_table(rows: list[Row]) -> str:
    lines = [
        "| pair | build MB | Mist update MB downloaded | new build .tar.zst -19 MB | ratio "
        "| Mist fresh-install MB/s | curl\\|zstd\\|tar MB/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        dl = int(r.update["bytes_downloaded"])
        lines.append(
            f"| {r.pair} | {r.build.bytes / MB:.1f} | {mb(dl)} | {mb(r.tar19)} | {dl / r.tar19:.0%} "
            f"| {r.mist_mbps:.0f} | {r.curl_mbps:.0f} | {r.mist_mbps / r.curl_mbps:.2f} |"
        )
    return "\n".join(lines)


def runs(seconds: list[float]) -> str:
    return " / ".join(f"{x:.2f}" for x in seconds)


def detail_table(rows: list[Row]) -> str:
    lines = [
        "| pair | kind | files | update: written MB | reused MB | update s (JSON / wall) "
        "| tar.zst -3 / -9 MB | Mist fresh install downloaded MB | Mist install wall s (runs) | its JSON seconds | curl\\|zstd\\|tar s (runs) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        u = r.update
        lines.append(
            f"| {r.pair} | {r.kind} | {r.build.files} | {mb(int(u['bytes_written']))} | {mb(int(u['bytes_reused']))} "
            f"| {float(u['seconds']):.2f} / {r.update_wall:.2f} | {mb(r.tar3)} / {mb(r.tar9)} "
            f"| {mb(r.mist_install_downloaded)} | {runs(r.mist_install)} | {runs(r.mist_install_reported)} | {runs(r.curl_install)} |"
        )
    return "\n".join(lines)


def tool_version(cmd: list[str]) -> str:
    """First line of a tool's version banner, without zstd's decoration."""
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip("* ").replace(", by Yann Collet", "") if text else "?"


def report(rows: list[Row], command: str, seconds: float, loads: tuple[float, float]) -> str:
    skipped = {r.pair: r.build.symlinks_skipped for r in rows if r.build.symlinks_skipped}
    notes = [
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
        f"{tool_version(['zstd', '--version'])}, {tool_version([NGINX, '-v'])}",
        f"- run time: {seconds:.0f} s; 1-minute load average {loads[0]:.2f} at the start, {loads[1]:.2f} at the end "
        "(anything above 0 is other work sharing the cores, which slows every column alike)",
        "- one `mist-server` (embedded, SQLite, loopback); the admin pushes old then new with `mistpipe push`; "
        "a friend (own MIST_HOME) runs `mist install --version OLD` then `mist update --to NEW`; "
        "every installed tree is compared byte for byte (and executable bit) with the new build",
        "- Mist update MB downloaded = `bytes_downloaded` from `mist update --json` (the chunk packs received; "
        "the signed manifest and the plan are not counted: chunk_sizes.md puts a manifest at ~1.3 KB per MB of build); "
        "ratio = that / the whole new build as `tar -cf - | zstd -19 -T2`",
        f"- install MB/s = build bytes / wall seconds around the subprocess; Mist: `mist install` of the new build "
        f"into an empty folder from a new MIST_HOME (nothing to reuse); plain: `curl | zstd -d | tar -x` of a "
        f"`zstd -{SERVED_LEVEL}` .tar.zst served by nginx on loopback (Mist's chunk level); ratio = Mist / plain",
        f"- the page cache cannot be dropped reliably, so every install ran {REPEATS} times and the **better** "
        "run is reported (both runs in the details)",
        "- MB = 10^6 bytes; build = regular files only"
        + (f" (symlinks skipped, as Mist refuses them: {skipped})" if skipped else ""),
    ]
    return ("# Install and update through Mist vs plain archives\n\n" + "\n".join(notes) + "\n\n"
            + main_table(rows) + "\n\n### Details\n\n" + detail_table(rows) + "\n")


# --- entry point ----------------------------------------------------------------------------


@contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into an exception so the finally blocks still stop the servers and remove temp dirs."""
    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_pairs(value: str | None) -> list[str] | None:
    if value == "all":
        return None
    return list(DEFAULT_PAIRS) if value is None else [p.strip() for p in value.split(",") if p.strip()]


def the_command() -> str:
    """The command as typed from the repository root, for the report."""
    exe = os.path.relpath(sys.executable, Path.cwd())
    return shlex.join([exe, *sys.argv])


def run(pairs: list[Pair], say: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="mist-update-bench-"))
        stack.callback(shutil.rmtree, work, True)  # registered first, so it runs after every process is stopped
        bench = Bench(work, stack)
        for pair in pairs:
            rows.append(bench.measure(pair, say))
    return rows


def compile_bytecode(code: Path = REPO) -> None:
    """Bring the .pyc files of Mist's packages in `code` (this tree, or a `git archive` of another commit) up to
    date before anything is timed, as pip does when it installs a wheel on a friend's machine. A shell with
    PYTHONDONTWRITEBYTECODE set (as this one is) never writes them on import, so every `mist` started in it
    compiled each module changed since its .pyc was made (a tree from `git archive`: every module), tens of ms
    per command that no friend pays. Every bench that times fresh Mist processes calls this first."""
    for package in PACKAGES:
        if (code / package).is_dir() and not compileall.compile_dir(code / package, quiet=1):
            raise SystemExit(f"{code / package} does not compile; fix it before measuring")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help=f"comma-separated pair names, or 'all' (default: {','.join(DEFAULT_PAIRS)})")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--sizes", help="fresh installs of synthetic builds of these many MB (comma-separated)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way per size (with --sizes)")
    parser.add_argument("--hold", action="store_true",
                        help="with --sizes: set up, print each way's install command and wait (for an outside timer)")
    args = parser.parse_args()
    compile_bytecode()
    command = the_command()
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    if args.sizes:
        megabytes = [int(x) for x in args.sizes.split(",") if x.strip()]
        with terminate_as_exception(), ExitStack() as stack:
            work = Path(tempfile.mkdtemp(prefix="mist-install-bench-"))
            stack.callback(shutil.rmtree, work, True)
            bench = Bench(work, stack)
            say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
            if args.hold:
                hold(bench, megabytes, stack, say)
                return
            rows = [measure_size(bench, size, args.repeats, stack, say) for size in megabytes]
        text = sizes_report(rows, command, time.perf_counter() - started, (load_start, os.getloadavg()[0]), args.repeats)
        print(text)
        out = args.out or DEFAULT_OUT.with_name("install_speed.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return
    args.out = args.out or DEFAULT_OUT
    with terminate_as_exception():
        pairs = corpus_pairs(parse_pairs(args.pairs))
        rows = run(pairs, lambda msg: print(msg, file=sys.stderr, flush=True))
    text = report(rows, command, time.perf_counter() - started, (load_start, os.getloadavg()[0]))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
