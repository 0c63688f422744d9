"""Measure one friend-to-friend transfer in Mist's peer protocol against a raw aiortc data channel.

Issue 5 asks that serving chunks to a friend costs little over the data
channel itself: target, Mist at 80% or more of the raw channel's throughput.
Both transfers move the same random bytes on loopback, between two OS
processes (uploader and downloader, like two friends), with the SDP offer and
answer carried through a multiprocessing Pipe. Raw: the sender writes the
bytes in 60 KiB messages, waiting while bufferedAmount is above peerlink's
high-water mark; time from the first send to the last byte received (both
ends read CLOCK_MONOTONIC). Mist: HELLO with a signed read ticket, WELCOME with
the uploader's window, then pipelined REQUESTs for 64-256 KiB chunks served
as PIECE fragments through PeerLink (each chunk through `encode`, which
tries zstd in a thread), every chunk decoded and hashed by the Downloader;
time from HELLO to the last chunk verified, counting chunk payload only.

Usage: python bench/peer_throughput.py [--mib 64] [--repeat 3] [--loop both] [--profile] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import hashlib
import io
import multiprocessing
import os
import platform
import pstats
import random
import resource
import shlex
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aioice.ice  # noqa: E402
import aioice.turn  # noqa: E402
import uvloop  # noqa: E402
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from client import peerlink, peerwire as pw  # noqa: E402
from shared import tickets  # noqa: E402
from shared.signing import Signer  # noqa: E402

MIB = 1024 * 1024
MB = 1_000_000
CHUNK_MIN, CHUNK_MAX = 64 * 1024, 256 * 1024
SEED = 5
TIMEOUT = 300.0
OTHERS_LIMIT = 1.0  # CPU seconds other processes may use during one transfer before it is measured again
BUILD = hashlib.sha256(b"peer_throughput bench build").hexdigest()


def allow_loopback_candidates() -> None:
    """aioice leaves 127.0.0.1 out of its host candidates; on one machine it is the only address to use.

    The same patch as the tests' loopback_ice fixture (tests/client/loopback_ice.py), here for the whole process.
    """
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def make_chunks(mib: int) -> list[bytes]:
    """N MiB of random bytes cut into chunks of 64..256 KiB (the last one takes the rest)."""
    rng, chunks, left = random.Random(SEED), [], mib * MIB
    while left:
        size = min(left, rng.randint(CHUNK_MIN, CHUNK_MAX))
        chunks.append(rng.randbytes(size))
        left -= size
    return chunks


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def receive_from(conn: Connection) -> Any:
    """The next object from the signalling pipe, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(conn.fileno(), on_readable)
    try:
        await asyncio.wait_for(readable, TIMEOUT)
    finally:
        loop.remove_reader(conn.fileno())
    os.set_blocking(conn.fileno(), True)  # uvloop's add_reader made it non-blocking; a long message arrives in parts
    return conn.recv()


# ---- raw baseline: one aiortc data channel, no protocol ---------------------------------------------


async def raw_receiver(signal: Connection, total: int) -> dict[str, float]:
    """The offering side: count bytes until `total` arrived, then close."""
    connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = connection.createDataChannel("raw", ordered=True)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    got, cpu0 = 0, 0.0

    def on_message(data: bytes | str) -> None:
        nonlocal got, cpu0
        if not got:
            cpu0 = cpu_seconds()
        got += len(data)
        if got >= total and not done.done():
            done.set_result(None)

    channel.on("message", on_message)
    await connection.setLocalDescription(await connection.createOffer())
    signal.send(connection.localDescription.sdp)
    answer_sdp, _ = await receive_from(signal)
    await connection.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
    await asyncio.wait_for(done, TIMEOUT)
    end, cpu = time.perf_counter(), cpu_seconds() - cpu0
    await connection.close()
    return {"end": end, "cpu": cpu, "bytes": got}


async def raw_sender(signal: Connection, chunks: list[bytes]) -> dict[str, float]:
    """The answering side: send the bytes in FRAGMENT-sized messages, bounded like PeerLink.send."""
    blob = b"".join(chunks)
    connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[RTCDataChannel] = loop.create_future()
    closed: asyncio.Future[None] = loop.create_future()

    def on_channel(channel: RTCDataChannel) -> None:
        def on_open() -> None:
            if not opened.done():
                opened.set_result(channel)

        def on_close() -> None:
            if not closed.done():
                closed.set_result(None)

        channel.on("close", on_close)
        if channel.readyState == "open":
            on_open()
        else:
            channel.on("open", on_open)

    connection.on("datachannel", on_channel)
    await connection.setRemoteDescription(RTCSessionDescription(await receive_from(signal), "offer"))
    await connection.setLocalDescription(await connection.createAnswer())
    signal.send((connection.localDescription.sdp, []))
    channel = await asyncio.wait_for(opened, TIMEOUT)
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = peerlink.LOW_WATER
    channel.on("bufferedamountlow", drained.set)
    start, cpu0 = time.perf_counter(), cpu_seconds()
    for offset in range(0, len(blob), pw.FRAGMENT):
        while channel.bufferedAmount > peerlink.HIGH_WATER:
            drained.clear()
            await drained.wait()
        channel.send(blob[offset : offset + pw.FRAGMENT])
    await asyncio.wait_for(closed, TIMEOUT)  # the receiver closes once it has everything
    cpu = cpu_seconds() - cpu0
    await connection.close()
    return {"start": start, "cpu": cpu}


# ---- Mist: the peer wire protocol through PeerLink ---------------------------------------------------


async def mist_downloader(signal: Connection, total: int, ticket: str) -> dict[str, float]:
    """The offering side, as a downloading friend: HELLO, then REQUESTs within the window; every chunk verified."""
    offering, offer_sdp = await peerlink.offer()
    signal.send(offer_sdp)
    answer_sdp, manifest = await receive_from(signal)
    link = await offering.complete(answer_sdp)
    down = pw.Downloader(dict(manifest))
    start, cpu0 = time.perf_counter(), cpu_seconds()
    await link.send(pw.Hello(ticket))
    while not down.window:
        down.handle(await link.receive())
    wanted, got, verified = deque(sha for sha, _ in manifest), 0, 0
    while verified < len(manifest):
        while wanted and down.free:
            await link.send(down.request(wanted.popleft()))
        for event in down.handle(await link.receive()):
            if not isinstance(event, pw.Received):
                raise RuntimeError(f"the uploader's chunk was not delivered intact: {event}")
            got, verified = got + len(event.data), verified + 1
    end, cpu = time.perf_counter(), cpu_seconds() - cpu0
    await link.close()
    return {"start": start, "end": end, "cpu": cpu, "bytes": got}


async def mist_uploader(signal: Connection, chunks: list[bytes], public_key: str) -> dict[str, float]:
    """The answering side, as the friend holding the build: check the ticket, serve requests until the link closes.

    Served as client/sharing.serve does, minus its disk reads and upload cap: HAVE_ALL after WELCOME, each chunk
    through `encode` in a thread; random bytes do not compress, so every chunk pays zstd's try and goes RAW.
    """
    held = {hashlib.sha256(c).hexdigest(): c for c in chunks}

    def authorize(token: str) -> str:
        ticket = tickets.decode(token, public_key, time.time())
        tickets.require(ticket, tickets.READ, BUILD)
        return ticket.build

    def chunks_of(build: str) -> frozenset[str]:
        return frozenset(held) if build == BUILD else frozenset()

    uploader = pw.Uploader(authorize, chunks_of, held.__contains__)
    answering, answer_sdp = await peerlink.answer(await receive_from(signal))
    signal.send((answer_sdp, [(sha, len(c)) for sha, c in held.items()]))
    link = await answering.link(TIMEOUT)
    cpu0 = cpu_seconds()
    while True:
        try:
            message = await link.receive()
        except peerlink.PeerGone:
            break
        for reply in uploader.handle(message):
            await link.send(reply)
        if isinstance(message, pw.Hello):
            await link.send(pw.HaveAll(BUILD))
        while (job := uploader.next_to_serve()) is not None:
            # as client/sharing.serve: each chunk encoded (zstd when smaller) in a thread, then sent in fragments
            encoding, payload = await asyncio.to_thread(pw.encode, held[job.sha256])
            for piece in pw.fragments(job.request_id, job.sha256, payload, encoding):
                await link.send(piece)
    return {"cpu": cpu_seconds() - cpu0}


# ---- one trial: two processes ------------------------------------------------------------------------


def side(role: str, kind: str, loop_name: str, mib: int, ticket: str, public_key: str,
         signal: Connection, results: Any, profile_to: str) -> None:
    """One process of a trial: run the role's coroutine on the chosen loop and report its numbers."""
    allow_loopback_candidates()
    coroutine: Coroutine[Any, Any, dict[str, float]]
    if role == "down":
        coroutine = raw_receiver(signal, mib * MIB) if kind == "raw" else mist_downloader(signal, mib * MIB, ticket)
    else:
        chunks = make_chunks(mib)
        coroutine = raw_sender(signal, chunks) if kind == "raw" else mist_uploader(signal, chunks, public_key)
    factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop if loop_name == "uvloop" else None
    profiler = cProfile.Profile() if profile_to else None
    with asyncio.Runner(loop_factory=factory) as runner:
        if profiler:
            profiler.enable()
        try:
            results.put((role, runner.run(coroutine)))
        except BaseException as exc:
            results.put((role, {"error": f"{type(exc).__name__}: {exc}"}))
            raise
        finally:
            if profiler:
                profiler.disable()
                profiler.dump_stats(profile_to)


def machine_busy() -> float:
    """CPU seconds all processes have used since boot (from /proc/stat), to see who else ran during a transfer."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def udp_drops() -> int:
    """UDP datagrams the kernel dropped because a socket's receive buffer was full (this network namespace)."""
    with open("/proc/net/snmp") as f:
        names, values = [line.split() for line in f if line.startswith("Udp:")][:2]
    return int(values[names.index("RcvbufErrors")])


def wait_until_quiet(limit: float = 600.0) -> float:
    """Wait (up to `limit` s) for 3 seconds in a row in which the machine used under 0.1 core; the seconds waited."""
    began, quiet = time.perf_counter(), 0
    while quiet < 3 and time.perf_counter() - began < limit:
        before = machine_busy()
        time.sleep(1)
        quiet = quiet + 1 if machine_busy() - before < 0.1 else 0
    return time.perf_counter() - began


def measured_trial(kind: str, loop_name: str, mib: int, profile_dir: str = "") -> dict[str, float]:
    """A trial on a quiet machine: retried (up to 3 times) when other processes used over OTHERS_LIMIT CPU seconds."""
    for _ in range(3):
        waited = wait_until_quiet()
        busy0, own0, self0 = machine_busy(), resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds()
        drops0 = udp_drops()
        result = trial(kind, loop_name, mib, profile_dir)
        result["drops"] = udp_drops() - drops0
        own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime + cpu_seconds() - self0
        result |= {"others": max(0.0, machine_busy() - busy0 - ours), "waited": waited}
        if result["others"] <= OTHERS_LIMIT:
            break
        print(f"  other processes used {result['others']:.1f} CPU s during that transfer; again", file=sys.stderr)
    return result


def trial(kind: str, loop_name: str, mib: int, profile_dir: str = "") -> dict[str, float]:
    """MB/s and CPU seconds per MiB of each side for one transfer."""
    signer = Signer.generate()
    ticket = tickets.Ticket("friend", tickets.READ, BUILD, int(time.time()) + 3600).encode(signer)
    ctx = multiprocessing.get_context("spawn")
    down_end, up_end = ctx.Pipe()
    results = ctx.Queue()
    processes = []
    for role, end in (("down", down_end), ("up", up_end)):
        profile_to = os.path.join(profile_dir, f"{kind}-{role}.pstats") if profile_dir else ""
        processes.append(ctx.Process(target=side, args=(role, kind, loop_name, mib, ticket, signer.public_key,
                                                        end, results, profile_to)))
    for p in processes:
        p.start()
    out: dict[str, dict[str, Any]] = {}
    while len(out) < len(processes) and not any("error" in r for r in out.values()):
        role, result = results.get(timeout=TIMEOUT)
        out[role] = result
    for p in processes:
        p.join(TIMEOUT if len(out) == len(processes) else 5)
        if p.is_alive():  # its peer failed: this side would wait for it until its own timeout
            p.terminate()
            p.join()
    if errors := [f"{role}: {r['error']}" for role, r in out.items() if "error" in r]:
        raise SystemExit(f"{kind} trial on {loop_name} failed: {'; '.join(errors)}")
    down, up = out["down"], out["up"]
    if down["bytes"] != mib * MIB:
        raise SystemExit(f"{kind} trial moved {down['bytes']} bytes, expected {mib * MIB}")
    start = down.get("start", up.get("start", 0.0))
    seconds = down["end"] - start
    return {"mbps": down["bytes"] / MB / seconds, "seconds": seconds,
            "cpu_up": up["cpu"] / mib, "cpu_down": down["cpu"] / mib}


COMPONENTS = (  # (name, substrings of a profiled function's file or name), the first that matches wins
    ("Mist: client/peerwire.py, client/peerlink.py", ("client/peerwire", "client/peerlink")),
    ("SHA-256 (hashlib)", ("_hashlib",)),
    ("bench loop (this file)", ("peer_throughput",)),
    ("aiortc SCTP (rtcsctptransport, its TSN arithmetic, CRC32C)", ("rtcsctptransport", "aiortc/utils", "crc32c")),
    ("DTLS (aiortc rtcdtlstransport, pyOpenSSL)",
     ("rtcdtlstransport", "OpenSSL", "_openssl", "cryptography", "_cffi_backend", "allocator")),
    ("ICE (aioice)", ("aioice",)),
    ("event loop, queues, sockets", ("asyncio", "selectors", "epoll", "_socket", "uvloop", "pyee", "_contextvars")),
)


def profile_breakdown(paths: dict[str, str]) -> list[str]:
    """Each side's profiled time (own time of every function) grouped by component, as shares."""
    shares: dict[str, dict[str, float]] = {}
    for side, path in paths.items():
        stats: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
        total = sum(row[2] for row in stats.values())
        for (filename, _, function), row in stats.items():
            where = f"{filename} {function}"
            name = next((n for n, keys in COMPONENTS if any(k in where for k in keys)),
                        "other (builtins called by all of the above)")
            shares.setdefault(name, dict.fromkeys(paths, 0.0))[side] += row[2] / total
    lines = ["| component | " + " | ".join(paths) + " |", "|---|" + "---:|" * len(paths)]
    for name in [n for n, _ in COMPONENTS] + ["other (builtins called by all of the above)"]:
        if name in shares:
            lines.append(f"| {name} | " + " | ".join(f"{100 * shares[name][s]:.1f}%" for s in paths) + " |")
    return lines + [""]


def profile_summary(path: str, lines: int) -> list[str]:
    stream = io.StringIO()
    stats = pstats.Stats(path, stream=stream)
    stats.strip_dirs().sort_stats("tottime").print_stats(lines)
    text = stream.getvalue()
    return ["```", text[text.index("   ncalls"):].rstrip(), "```", ""]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB per transfer (default 64)")
    parser.add_argument("--repeat", type=int, default=3, help="transfers of each kind per loop; the median is reported")
    parser.add_argument("--loop", choices=("asyncio", "uvloop", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="after measuring, one cProfiled transfer of each kind")
    parser.add_argument("--out", type=Path, help="also write the report here, with date and command")
    args = parser.parse_args()

    loops = ("asyncio", "uvloop") if args.loop == "both" else (args.loop,)
    started, load_before = time.perf_counter(), load()
    rows, runs = [], []
    for loop_name in loops:
        measured: dict[str, list[dict[str, float]]] = {"raw": [], "mist": []}
        for rep in range(args.repeat):
            for kind in ("raw", "mist") if rep % 2 == 0 else ("mist", "raw"):
                result = measured_trial(kind, loop_name, args.mib)
                measured[kind].append(result)
                print(f"[{time.perf_counter() - started:5.0f}s] {loop_name} {kind} #{rep + 1}: "
                      f"{result['mbps']:.1f} MB/s", file=sys.stderr)
                runs.append(f"| {loop_name} | {kind} | {rep + 1} | {result['seconds']:.2f} | {result['mbps']:.1f} "
                            f"| {result['cpu_up']:.3f} | {result['cpu_down']:.3f} | {result['drops']:.0f} "
                            f"| {result['others']:.1f} | {result['waited']:.0f} |")
        med = {kind: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for kind, rs in measured.items()}
        spread = {kind: f"{min(r['mbps'] for r in rs):.1f}-{max(r['mbps'] for r in rs):.1f}"
                  for kind, rs in measured.items()}
        rows.append(f"| {loop_name} | {med['raw']['mbps']:.1f} | {med['mist']['mbps']:.1f} "
                    f"| {med['mist']['mbps'] / med['raw']['mbps']:.0%} "
                    f"| {med['raw']['cpu_up']:.3f} / {med['raw']['cpu_down']:.3f} "
                    f"| {med['mist']['cpu_up']:.3f} / {med['mist']['cpu_down']:.3f} "
                    f"| {spread['raw']} | {spread['mist']} |")
    load_after = load()

    profiles: list[str] = []
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("raw", "mist"):
                measured_trial(kind, "asyncio", args.mib, tmp)
            sides = {f"{kind} {name}": os.path.join(tmp, f"{kind}-{role}.pstats")
                     for kind in ("raw", "mist") for role, name in (("up", "sender"), ("down", "receiver"))}
            profiles += ["### Where the time goes (cProfile, asyncio loop, one more transfer of each kind; "
                         "share of each process's profiled time)", "",
                         "cProfile sees the event loop's thread only: `encode`'s zstd runs in a worker thread "
                         "and shows in the CPU columns above, not here.", "", *profile_breakdown(sides)]
            for side, path in sides.items():
                profiles += [f"### cProfile: {side}, by own time", "", *profile_summary(path, 15)]

    header = [
        "# Peer throughput: Mist's peer protocol against a raw data channel",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{' '.join(shlex.quote(a) for a in ['python', 'bench/peer_throughput.py', *sys.argv[1:]])}`",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"aiortc {version('aiortc')}, aioice {version('aioice')}, uvloop {version('uvloop')}",
        f"- load average (1/5/15 min): {load_before} at the start, {load_after} at the end",
        f"- {args.mib} MiB of random bytes per transfer, on loopback (127.0.0.1 host candidates, no STUN), "
        "uploader and downloader in two processes, SDP through a multiprocessing Pipe; "
        "each transfer in fresh processes",
        f"- **raw**: one ordered aiortc data channel, the bytes in {pw.FRAGMENT // 1024} KiB messages, the sender "
        f"waiting while bufferedAmount > {peerlink.HIGH_WATER // MIB} MiB (until it falls to "
        f"{peerlink.LOW_WATER // MIB} MiB), as PeerLink.send; timed from the first send to the last byte received",
        f"- **mist**: the same bytes as chunks of {CHUNK_MIN // 1024}..{CHUNK_MAX // 1024} KiB; HELLO with a signed "
        f"read ticket (checked by `Uploader(authorize=...)`), WELCOME (window {pw.DEFAULT_WINDOW}), HAVE_ALL, "
        f"REQUESTs pipelined within the window; the uploader serves as client/sharing.serve does, minus disk and "
        f"upload cap: each chunk through `encode` in a thread (zstd level {pw.LINK_LEVEL} when smaller; random bytes "
        f"never are, so all go RAW after zstd's try: Mist's worst case), PIECE fragments of {pw.FRAGMENT // 1024} "
        f"KiB through PeerLink; every chunk's SHA-256 checked by `Downloader`; protocol version {pw.VERSION}; timed "
        "from HELLO to the last chunk verified; MB/s counts chunk payload",
        f"- MB = 10^6 bytes; median of {args.repeat} transfers of each kind per loop, raw and mist alternating "
        "(raw first in odd rounds, mist first in even ones); "
        "CPU = user+system seconds per MiB of each process (getrusage) during the transfer",
        "- each transfer starts after 3 s in a row with the machine under 0.1 core busy, and is measured again "
        f"(up to 3 times) if other processes used more than {OTHERS_LIMIT:.0f} CPU s during it (/proc/stat minus "
        "the bench's own processes); both are in the table of every transfer",
        f"- UDP datagrams dropped = RcvbufErrors in /proc/net/snmp during the transfer: a full socket receive buffer "
        f"(aioice asks SO_RCVBUF {aioice.turn.UDP_SOCKET_BUFFER_SIZE // 1024} KiB for its host sockets); "
        "SCTP then retransmits and shrinks its congestion window; it varies from one transfer to the next",
        f"- run time: {time.perf_counter() - started:.0f} s; target: mist >= 80% of raw",
        "",
        "| loop | raw MB/s | mist MB/s | mist / raw | raw CPU s/MiB (sender / receiver) "
        "| mist CPU s/MiB (uploader / downloader) | raw MB/s min-max | mist MB/s min-max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "### Every transfer",
        "",
        "| loop | kind | # | seconds | MB/s | CPU s/MiB uploader | CPU s/MiB downloader "
        "| UDP datagrams dropped | CPU s of other processes | s waited for quiet |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *runs,
        "",
    ]
    report = "\n".join(header + profiles)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
