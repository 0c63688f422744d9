"""Seeder egress: how much of a fresh install the admin's seeder still sends when friends already have the game.

The admin's upload is the circle's scarcest link, so the tracker holds the
seeder to a share of each download while friends can carry it
(MIST_SEEDER_SHARE, default 0.2). This script measures that through the real
product: a tracker and a seeder run apart (as in tests/e2e/test_peers.py), the
admin pushes a synthetic ~100 MB game, five friends install it, and then a
fresh client (new user, new MIST_HOME) installs it while N = 0, 1, 3, 5 of
those friends run `mist daemon`. N = 3 is measured again with the share limit
off (a tracker restarted with MIST_SEEDER_SHARE=1.0) to show what the policy
buys, and with the friends' upload uncapped (their default is 1 MB/s); N = 0 and
N = 3 are measured again with the installing client on asyncio's own loop
instead of uvloop.

Two figures of the seeder's egress are kept: what the client says it received
from the seeder (`bytes_from_seeder`: the seeder's response bodies, chunks
zstd-compressed) and what the seeder process really wrote (the `wchar` counter
of /proc/PID/io around the install; the seeder runs on uvloop, whose socket
writes are write()/writev() calls and are counted there), which adds HTTP
headers and its log. Friends send chunks zstd-compressed (level 1) and the
share limit counts network bytes (client/scheduler.py); the seeder's share of
the bytes is also set against what it sends when no friend is online. Every installed tree is compared file by file (SHA-256 and
executable bit).

Usage: .venv/bin/python bench/seeder_egress.py [--mb 100] [--repeats 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from update_bench import (BenchError, Person, free_port, stop_group, terminate_as_exception,  # noqa: E402
                          the_command)
from tests.e2e.gametree import make_tree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_OUT = REPO / "bench" / "results" / "seeder_egress.md"
ADMIN_PASSWORD = "bench-admin-secret"
FRIEND_PASSWORD = "bench-friend-secret"
GAME = "coop"
LOOPBACK = {"MIST_PEER_LOOPBACK": "1"}  # several clients on one machine: let WebRTC use 127.0.0.1
SHARE = 0.2  # the tracker's default, as in tests/e2e/test_peers.py
TARGET = 0.25  # at most this share of the build from the seeder with three friends online
FRIENDS = 5
LARGE_FILE = 12_000_000  # the synthetic game's big files, alternately random and compressible
START_TIMEOUT = 90.0
INSTALL_TIMEOUT = 900
MB = 1_000_000
DEFAULT_CAP = "1MB"  # a friend's upload cap unless they change it (client/sharing_settings.py Sharing)
CAPS = {DEFAULT_CAP: 1_000_000, "unlimited": None}  # `mist share --upload-cap` text -> what `mist status` shows
# `mist` with uvloop made unimportable: client/commandline.py `_runner` then falls back to asyncio.run.
NO_UVLOOP = "import sys; sys.modules['uvloop'] = None; from client.cli import main; sys.argv[0] = 'mist'; sys.exit(main())"


# --- processes ------------------------------------------------------------------------------


def spawn(cmd: list[str], log: Path, env: dict[str, str], stack: ExitStack) -> subprocess.Popen[bytes]:
    """A long-running child in its own session (so stop_group ends all of it), stderr to a log file."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                start_new_session=True)
    stack.callback(stop_group, proc)
    return proc


def wait_for_line(proc: subprocess.Popen[bytes], log: Path, marker: str, what: str) -> None:
    """Until the child's log holds `marker` (it says it is ready), not for a fixed time."""
    deadline = time.monotonic() + START_TIMEOUT
    while marker not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{what} never said {marker!r} (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


@dataclass
class Services:
    """A tracker and a seeder run apart, sharing one data folder; the tracker can be restarted with another share."""

    work: Path
    stack: ExitStack
    tracker_port: int = field(default_factory=free_port)
    seeder_port: int = field(default_factory=free_port)
    tracker: subprocess.Popen[bytes] | None = None
    seeder: subprocess.Popen[bytes] | None = None
    share: float = SHARE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.tracker_port}"

    def start_tracker(self, share: float) -> None:
        env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, "MIST_SEEDER_SHARE": str(share)}
        log = self.work / f"tracker-share{share}.log"
        self.tracker = spawn([str(BIN / "mist-tracker"), "--data", str(self.work / "data"), "--port", str(self.tracker_port),
                              "--seeder-url", f"http://127.0.0.1:{self.seeder_port}/seeder"], log, env, self.stack)
        wait_for_line(self.tracker, log, " listening on ", "mist-tracker")
        self.share = share

    def restart_tracker(self, share: float) -> None:
        assert self.tracker is not None
        stop_group(self.tracker)
        self.start_tracker(share)

    def start_seeder(self) -> None:
        log = self.work / "seeder.log"
        self.seeder = spawn([str(BIN / "mist-seeder"), "--store", str(self.work / "data" / "store"),
                             "--port", str(self.seeder_port), "--tracker-url", self.url], log, dict(os.environ), self.stack)
        wait_for_line(self.seeder, log, " listening on ", "mist-seeder")

    def seeder_written(self) -> int:
        """Bytes the seeder process has written so far (sockets, its log): /proc/PID/io wchar."""
        assert self.seeder is not None
        for line in Path(f"/proc/{self.seeder.pid}/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
        raise BenchError("/proc/PID/io has no wchar line; this bench needs Linux")


@dataclass
class Friend:
    """A user who installed the game, and the `mist daemon` that shares it while it runs."""

    person: Person
    name: str
    stack: ExitStack
    daemon: subprocess.Popen[bytes] | None = None
    upload_cap: str = DEFAULT_CAP

    def local(self, path: str) -> dict[str, Any]:
        """A call to the daemon's local API, as `mist status` makes it."""
        address = json.loads((self.person.home / "daemon.json").read_text())
        request = urllib.request.Request(address["url"] + path, headers={"Authorization": f"Bearer {address['token']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    def start_daemon(self) -> None:
        env = {**os.environ, "MIST_HOME": str(self.person.home), "MIST_PASSWORD": FRIEND_PASSWORD, **LOOPBACK}
        log = self.person.home.parent / f"{self.name}-daemon.log"
        self.daemon = spawn([str(BIN / "mist"), "daemon", "--port", "0"], log, env, self.stack)
        wait_for_line(self.daemon, log, "local API at http://127.0.0.1:", f"{self.name}'s daemon")
        self.wait_joined()

    def wait_joined(self, not_peer: str | None = None) -> None:
        """Until the daemon is on the tracker's swarm (as a new member if `not_peer` is its old id) and shares a build."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            status = self.local("/api/status")
            if status["connected"] and status["builds_shared"] and status["peer_id"] != not_peer:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}'s daemon never joined the swarm: {status}")
            time.sleep(0.05)

    def set_upload_cap(self, text: str) -> None:
        """`mist share --upload-cap`, then wait until the running daemon has read it (it polls its settings file)."""
        self.person.run("mist", "share", "--upload-cap", text)
        self.upload_cap = text
        deadline = time.monotonic() + START_TIMEOUT
        while self.daemon is not None and self.local("/api/status")["sharing"]["upload_cap"] != CAPS[text]:
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}'s daemon did not pick up the upload cap {text}")
            time.sleep(0.05)

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            stop_group(self.daemon)
            self.daemon = None
            (self.person.home / "daemon.json").unlink(missing_ok=True)


# --- the game and its check -----------------------------------------------------------------


def game_tree(root: Path, mb: float) -> Path:
    """tests/e2e/gametree's tree (nested text files, an executable, empty files) with big files filling it to ~mb MB."""
    rest = max(1.0, mb * MB - 1.2 * MB)  # the executable and the small text files
    count = max(2, math.ceil(rest / LARGE_FILE))
    return make_tree(root, seed=2024, small_files=300, large=tuple([int(rest / count)] * count))


def file_hashes(root: Path) -> dict[str, tuple[str, bool]]:
    """Relative path -> (SHA-256, executable bit) of every file, but the client's .mist folder at the root."""
    out = {}
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not (Path(dirpath) == root and d == ".mist")]
        for name in names:
            path = Path(dirpath, name)
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            out[path.relative_to(root).as_posix()] = (digest, bool(path.stat().st_mode & 0o100))
    return out


def differences(want: dict[str, tuple[str, bool]], got: dict[str, tuple[str, bool]]) -> list[str]:
    problems = [f"missing {p}" for p in sorted(set(want) - set(got))] + [f"extra {p}" for p in sorted(set(got) - set(want))]
    return problems + [f"differs: {p}" for p in sorted(set(want) & set(got)) if want[p] != got[p]]


# --- the measurements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    label: str
    friends: int  # daemons running
    share: float  # the tracker's MIST_SEEDER_SHARE
    uvloop: bool  # the installing client's event loop
    upload_cap: str = DEFAULT_CAP  # each friend's `mist share --upload-cap`


@dataclass(frozen=True)
class Run:
    """One fresh install: the client's --json, the seeder's and friends' egress around it, and the check.
    A failed install keeps its error (`outcome` is empty) and what running the same command again gave."""

    scenario: Scenario
    outcome: dict[str, Any]
    wall: float
    seeder_written: int
    friends_uploaded: int
    load: float
    problems: tuple[str, ...] = ()
    error: str = ""
    again: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.problems

    @property
    def share(self) -> float:
        return int(self.outcome["bytes_from_seeder"]) / max(1, int(self.outcome["bytes_downloaded"]))


SCENARIOS = (
    Scenario("N=0 (seeder only)", 0, SHARE, True),
    Scenario("N=0, client on asyncio loop", 0, SHARE, False),
    Scenario("N=1", 1, SHARE, True),
    Scenario("N=3", 3, SHARE, True),
    Scenario("N=3, client on asyncio loop", 3, SHARE, False),
    Scenario("N=5", 5, SHARE, True),
    Scenario("N=3, friends' upload uncapped", 3, SHARE, True, "unlimited"),
    Scenario("N=3, no share limit (1.0)", 3, 1.0, True),
)


class Bench:
    def __init__(self, work: Path, stack: ExitStack, mb: float, say: Callable[[str], None]) -> None:
        self.work, self.stack, self.say = work, stack, say
        self.services = Services(work, stack)
        self.services.start_tracker(SHARE)
        self.services.start_seeder()
        self.admin = Person(work / "admin", ADMIN_PASSWORD)
        self.admin.run("mistpipe", "login", self.services.url, "--user", "admin")
        self.tree = game_tree(work / "game", mb)
        self.hashes = file_hashes(self.tree)
        self.tree_bytes = sum(p.stat().st_size for p in self.tree.rglob("*") if p.is_file())
        self.admin.run("mistpipe", "new-game", GAME, "--title", "Co-op bench")
        self.pushed = self.admin.json("mistpipe", "push", GAME, str(self.tree), "--version", "1")
        say(f"pushed {self.tree_bytes / MB:.1f} MB in {len(self.hashes)} files")
        self.users = 0
        self.friends = [self.new_friend("friend") for _ in range(FRIENDS)]
        for f in self.friends:
            f.person.json("mist", "install", GAME, "--dir", str(work / f"{f.name}-game"))
        say(f"{FRIENDS} friends installed the game")

    def new_friend(self, prefix: str) -> Friend:
        self.users += 1
        name = f"{prefix}{self.users}"
        self.admin.run("mistpipe", "user", "add", name, env={"MIST_PASSWORD": FRIEND_PASSWORD})
        person = Person(self.work / "homes" / name, FRIEND_PASSWORD)
        person.run("mist", "login", self.services.url, "--user", name)
        return Friend(person, name, self.stack)

    def arrange(self, scenario: Scenario) -> None:
        """Exactly `scenario.friends` daemons running, with its upload cap, on a tracker with its share."""
        for f in self.friends[scenario.friends:]:
            f.stop_daemon()
        if scenario.share != self.services.share:
            running = [f for f in self.friends if f.daemon is not None]
            old = {f.name: f.local("/api/status")["peer_id"] for f in running}
            self.services.restart_tracker(scenario.share)
            for f in running:
                f.wait_joined(not_peer=old[f.name])  # reconnected with backoff, announced again
        for f in self.friends[: scenario.friends]:
            if f.daemon is None:
                f.start_daemon()
            if f.upload_cap != scenario.upload_cap:
                f.set_upload_cap(scenario.upload_cap)

    def install(self, scenario: Scenario) -> Run:
        client = self.new_friend("newcomer")
        dest = self.work / f"{client.name}-game"
        online = [f for f in self.friends if f.daemon is not None]
        uploaded = sum(int(f.local("/api/status")["bytes_uploaded"]) for f in online)
        written = self.services.seeder_written()
        load = os.getloadavg()[0]
        env = {**os.environ, "MIST_HOME": str(client.person.home), "MIST_PASSWORD": FRIEND_PASSWORD, **LOOPBACK}
        env.pop("MIST_CRASH_AT", None)
        mist = [str(BIN / "mist")] if scenario.uvloop else [sys.executable, "-c", NO_UVLOOP]
        command = [*mist, "install", GAME, "--dir", str(dest), "--json"]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                                timeout=INSTALL_TIMEOUT)
        wall = time.perf_counter() - started
        seeder_written = self.services.seeder_written() - written
        friends_uploaded = sum(int(f.local("/api/status")["bytes_uploaded"]) for f in online) - uploaded
        if result.returncode != 0:  # kept as a finding; the command says to run it again, so do that once
            error = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            again = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                                   timeout=INSTALL_TIMEOUT)
            verdict = "the tree differs" if again.returncode == 0 and differences(self.hashes, file_hashes(dest)) else ""
            run = Run(scenario, {}, wall, seeder_written, friends_uploaded, load, error=error,
                      again=verdict or ("completed, tree identical" if again.returncode == 0
                                        else f"failed: {again.stderr.strip()[-300:]}"))
            self.say(f"{scenario.label}: INSTALL FAILED after {wall:.1f} s: {error}; running it again {run.again}")
        else:
            run = Run(scenario, json.loads(result.stdout), wall, seeder_written, friends_uploaded, load,
                      tuple(differences(self.hashes, file_hashes(dest))))
            self.say(f"{scenario.label}: {run.share:.0%} from the seeder, {wall:.1f} s, "
                     f"peers_used {run.outcome['peers_used']}{'' if run.ok else ', TREE DIFFERS'}")
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(client.person.home)
        return run


def measure(mb: float, repeats: int, say: Callable[[str], None]) -> tuple[list[Run], int]:
    runs: list[Run] = []
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="mist-seeder-egress-"))
        stack.callback(shutil.rmtree, work, True)  # registered first, so it runs after every process is stopped
        bench = Bench(work, stack, mb, say)
        for scenario in SCENARIOS:
            bench.arrange(scenario)
            runs += [bench.install(scenario) for _ in range(repeats)]
        for f in bench.friends:
            f.stop_daemon()
        return runs, bench.tree_bytes


# --- report ---------------------------------------------------------------------------------


def alone(runs: list[Run]) -> float:
    """What the seeder sends for the whole build with no friend online (the mean of the N = 0 runs)."""
    base = [int(r.outcome["bytes_from_seeder"]) for r in runs if r.scenario.friends == 0 and r.scenario.uvloop and r.ok]
    return sum(base) / len(base)


def table(runs: list[Run], build: int) -> str:
    lines = [
        "| friends online | share cap | friend upload cap | client loop | downloaded MB | from seeder MB | from friends MB "
        "| **share from seeder** | seeder MB / seeder-only MB | seeder wrote MB (share) | friends sent MB "
        "| peers used | wall s | install MB/s | tree |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    baseline = alone(runs)
    for r in runs:
        o, s = r.outcome, r.scenario
        if r.error:
            lines.append(f"| {s.label} | {s.share:g} | {s.upload_cap if s.friends else '-'} | "
                         f"{'uvloop' if s.uvloop else 'asyncio'} |" + " - |" * 5 + f" {r.seeder_written / MB:.1f} "
                         f"| {r.friends_uploaded / MB:.1f} | - | {r.wall:.1f} | - | **install failed**: {r.error} "
                         f"(`mist install` again: {r.again}) |")
            continue
        downloaded = int(o["bytes_downloaded"])
        lines.append(
            f"| {s.label} | {s.share:g} | {s.upload_cap if s.friends else '-'} | {'uvloop' if s.uvloop else 'asyncio'} | {downloaded / MB:.1f} "
            f"| {int(o['bytes_from_seeder']) / MB:.1f} | {int(o['bytes_from_peers']) / MB:.1f} | **{r.share:.0%}** "
            f"| {int(o['bytes_from_seeder']) / baseline:.0%} "
            f"| {r.seeder_written / MB:.1f} ({r.seeder_written / max(1, downloaded):.0%}) | {r.friends_uploaded / MB:.1f} "
            f"| {o['peers_used']} | {r.wall:.1f} | {build / MB / r.wall:.1f} "
            f"| {'identical' if r.ok else 'DIFFERS: ' + ', '.join(r.problems[:3])} |"
        )
    return "\n".join(lines)


def verdict(runs: list[Run]) -> str:
    at3 = [r for r in runs if r.scenario.friends == 3 and r.scenario.share == SHARE
           and r.scenario.upload_cap == DEFAULT_CAP and r.ok]
    failed = [r for r in runs if not r.ok]
    failures = f" {len(failed)} of {len(runs)} installs failed or differ (rows above)." if failed else ""
    if not at3:
        return f"Target: at most {TARGET:.0%} of the build from the seeder with 3 friends online: not measured.{failures}"
    worst = max(r.share for r in at3)
    egress = max(int(r.outcome["bytes_from_seeder"]) for r in at3) / alone(runs)

    def met(x: float) -> str:
        return "met" if x <= TARGET else "**missed**"

    return (f"Target: at most {TARGET:.0%} of the build from the seeder with 3 friends online (share cap {SHARE:g}, "
            f"friends at the default upload cap, {len(at3)} successful runs, worst shown). "
            f"As `bytes_from_seeder / bytes_downloaded`: {met(worst)} ({worst:.1%}). "
            f"As the seeder's bytes against what it sends with no friend online: {met(egress)} ({egress:.1%}).{failures}")


def report(runs: list[Run], build: int, command: str, seconds: float, uptimes: tuple[str, str]) -> str:
    notes = [
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}, "
        f"aiortc {version('aiortc')}, uvloop {version('uvloop')}",
        f"- `uptime` at the start: `{uptimes[0]}`; at the end: `{uptimes[1]}`; run time {seconds:.0f} s. "
        "The tracker, the seeder, up to five daemons and the installing client share the two cores with whatever "
        "else runs, so seconds and MB/s are rough; the byte counts do not depend on load.",
        f"- one `mist-tracker` and one `mist-seeder` apart, on loopback; a synthetic game "
        f"({build / MB:.1f} MB: tests/e2e/gametree.make_tree, {LARGE_FILE // MB} MB files alternately random and "
        f"compressible, 300 small text files) pushed with `mistpipe push`; {FRIENDS} friends installed it before "
        "any daemon ran; each row is a fresh client (new user, new MIST_HOME) running `mist install --json` "
        "while N friends run `mist daemon`; MIST_PEER_LOOPBACK=1 for the daemons and the client",
        "- share from seeder = `bytes_from_seeder / bytes_downloaded` from the client's --json (`bytes_from_seeder`: "
        "the seeder's response bodies, compressed; `bytes_from_peers`: fresh chunks from friends as they crossed the link, compressed); "
        "seeder wrote = the seeder process's /proc/PID/io `wchar` around the install (adds HTTP headers and its log); "
        "friends sent = "
        "the daemons' `bytes_uploaded` delta (framing and duplicates included); seeder MB / seeder-only MB = "
        "`bytes_from_seeder` against its mean in the N=0 rows (the admin's upload saved, in the same compressed units)",
        "- friends read chunks from their installed files and send them zstd-compressed at level 1 (client/sharing.py, "
        "peer protocol 2), the seeder as stored (level 9); the share cap counts both in network bytes "
        "(client/scheduler.py `_allowance`)",
        "- install MB/s = build MB / wall seconds around the `mist install` process (start-up included); "
        "downloaded MB = what came over the wire (compressed from both)",
        f"- friend upload cap: each friend's `mist share --upload-cap`; {DEFAULT_CAP}/s is the default a friend "
        "gets without changing anything (client/sharing_settings.py), so it bounds each friend's column in every row "
        "but the uncapped one",
        "- no share limit: the tracker restarted with MIST_SEEDER_SHARE=1.0 (friends 4 and 5 stopped, 1-3 "
        "reconnected); asyncio loop: `mist` run with uvloop made unimportable (`sys.modules['uvloop'] = None`), "
        "since client/commandline.py `_runner` has no switch and takes uvloop whenever it is installed; "
        "the daemons and the servers stay on uvloop",
        "- every installed tree was compared file by file with the build (SHA-256 and executable bit)",
        "- MB = 10^6 bytes",
    ]
    return ("# Seeder egress with friends online\n\n" + "\n".join(notes) + "\n\n" + table(runs, build) + "\n\n"
            + verdict(runs) + "\n")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="size of the synthetic game in MB (default 100)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh installs per scenario (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="also write the report here")
    args = parser.parse_args()
    command, started, first = the_command(), time.perf_counter(), uptime()
    with terminate_as_exception():
        runs, build = measure(args.mb, args.repeats, lambda msg: print(msg, file=sys.stderr, flush=True))
    text = report(runs, build, command, time.perf_counter() - started, (first, uptime()))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
