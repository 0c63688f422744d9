"""Big builds (issue 20): what Mist's costs that grow with a build's size do at 1, 10 and 100 GB.

Two parts, both quick to set up because nothing here needs 100 GB of disk:

* `manifests`: synthetic signed-manifest-shaped builds (random chunk hashes, 32-96 KiB chunks, half the bytes
  in 1 GiB pack files, half in 1 MiB files) and a next version that changes 100 MB of them (three runs of
  chunks in packs, a few small files). Each step runs in a fresh Python process that prints its wall time
  and peak memory (ru_maxrss): parsing a manifest, the client's update bookkeeping, the tracker's plan, and
  what a friend who holds the previous build downloads for the new manifest.
* `push`: a real `mist-server` and `mistpipe push` of a folder of hard links to a few 256 MiB files of random
  bytes (so 100 GB of files cost 1 GB of disk, and every byte is still read, chunked and hashed), then the
  next version with 1% of the build rewritten, read in full (`--rescan`, what every push did before the push
  cache) and through the push cache: time, bytes read and uploaded, and peak memory of `mistpipe`.

* `plan`: the tracker's plan route for that update, with nothing kept yet and with both builds kept: CPU,
  peak memory, what is kept, and what each further request allocates.

* `install`: a friend's `mist install` of real builds of 1, 10 and 100 GB (hard links to four 256 MiB random
  files, as `push` makes) through a running `mist daemon`, once with this tree and once with a baseline
  checkout (`--baseline`, run as `python -m client` with the baseline first on PYTHONPATH): the seconds
  from the request to the installer's first word, the bar with its total and the first bytes written, as
  the daemon streams them to the CLI (`/api/run`), and the daemon's resident memory sampled every 0.25 s.
  Each install goes into a sparse loop-mounted ext4 image (root only): the installer rightly refuses to
  start a 100 GB install without the room, which this disk does not have, and the image's used blocks
  say what was written; a build larger than `--stop-after` GB is stopped once that much is on it. The
  builds reach the server without reading 100 GB: the four files are pushed once as a game of their own,
  which fills the admin's push cache (mistpipe/scancache.py) with their chunk lists; every hard link of a
  bigger build has the same size, modification time and inode, so its cache row is the unit's row under
  the build folder's root and path, and `mistpipe push` of the big folder reads nothing and uploads no
  chunk (the server holds them all), only the manifest.

* `seeder`: what the seeder keeps of each build it serves (the parsed manifest's chunk set and file dict
  before; shared/build_index.py's compact index after): the time and peak to make it, the memory it holds,
  and a chunk check's cost.

* `client`: the friend's bookkeeping of a big build on a client.db where the previous build is installed:
  `mist update` before it fetches (the new build's index or parse, the plan, the install recorded), `mist
  verify` before it hashes, `mist ls`, and the daemon's start (its sharing library), before and after.

Usage: .venv/bin/python bench/big_builds.py manifests --sizes 1,10,100 --baseline DIR
       .venv/bin/python bench/big_builds.py client --sizes 1,10,100 --baseline DIR
       .venv/bin/python bench/big_builds.py seeder --sizes 1,10,100 --baseline DIR
       .venv/bin/python bench/big_builds.py plan --sizes 1,10,100 --baseline DIR
       .venv/bin/python bench/big_builds.py push --sizes 1,10,100
       .venv/bin/python bench/big_builds.py install --sizes 1,10,100 --baseline DIR --work /var/tmp
Each prints a Markdown table; docs/PERFORMANCE.md holds the figures and the commands.
"""

from __future__ import annotations

import argparse
import gzip
import gc
import hashlib
import itertools
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from update_bench import REPO, BenchError, Person, StderrTail, compile_bytecode, free_port, start_mist_server, stop_group  # noqa: E402

GB = 1_000_000_000
MB = 1_000_000
PACK = 1 << 30
SMALL = 1 << 20
CHANGED = 100 * MB
CHUNKING = {"algorithm": "fastcdc2020", "min": 16384, "avg": 65536, "max": 262144, "normalization": 1}
UNIT = 256 << 20  # the push bench's distinct file; the build is hard links to a few of them
ADMIN_PASSWORD = "bench-admin-secret"


# --- synthetic manifests ------------------------------------------------------------------------


def _file(path: str, size: int, rng: random.Random) -> dict[str, Any]:
    chunks, left = [], size
    while left:
        n = min(left, rng.randrange(32 * 1024, 96 * 1024))
        chunks.append([rng.randbytes(32).hex(), n])
        left -= n
    return {"chunks": chunks, "executable": False, "path": path, "sha256": rng.randbytes(32).hex(), "size": size}


def synthetic(size: int, seed: int = 1) -> dict[str, Any]:
    """A build of about `size` bytes: half in 1 GiB packs (at least one, smaller at 1 GB), half in 1 MiB files."""
    rng = random.Random(seed)
    packs = max(1, size // 2 // PACK)
    pack_size = min(PACK, size // 2 // packs)
    files = [_file(f"data/pack{i:03d}.bin", pack_size, rng) for i in range(packs)]
    files += [_file(f"assets/{i // 1000:03d}/a{i:05d}.dat", SMALL, rng) for i in range((size - packs * pack_size) // SMALL)]
    files.sort(key=lambda f: f["path"])
    return {"chunking": CHUNKING, "files": files, "format": 1, "game": "big", "version": "1"}


def changed(base: dict[str, Any], amount: int = CHANGED, seed: int = 2) -> tuple[dict[str, Any], int]:
    """The next version: `amount` bytes of new chunks, in three runs inside packs and a few whole small files."""
    rng = random.Random(seed)
    files = [dict(f, chunks=list(f["chunks"])) for f in base["files"]]
    packs = [f for f in files if f["path"].startswith("data/")]
    small = [f for f in files if f["path"].startswith("assets/")]
    done = 0
    for f in small[:: max(1, len(small) // 8)][:8]:  # eight small files replaced whole
        f["chunks"] = [[rng.randbytes(32).hex(), n] for _, n in f["chunks"]]
        f["sha256"] = rng.randbytes(32).hex()
        done += f["size"]
    per_run = (amount - done) // 3
    for i in range(3):
        f = packs[i % len(packs)]
        start = rng.randrange(len(f["chunks"]) // 2) + i * 7
        at, got = start, 0
        while got < per_run and at < len(f["chunks"]):
            got += f["chunks"][at][1]
            f["chunks"][at] = [rng.randbytes(32).hex(), f["chunks"][at][1]]
            at += 1
        f["sha256"] = rng.randbytes(32).hex()
        done += got
    return {**base, "files": files, "version": "2"}, done


def make(size: int, folder: Path) -> tuple[int, int]:
    """Write builds 1 and 2 of about `size` bytes into `folder`; their chunk count and the bytes changed."""
    base = synthetic(size)
    new, changed_bytes = changed(base)
    (folder / "1.json").write_bytes(canonical(base))
    (folder / "2.json").write_bytes(canonical(new))
    had = {f["path"]: f["sha256"] for f in base["files"]}
    (folder / "write.json").write_text(json.dumps([f["path"] for f in new["files"] if had.get(f["path"]) != f["sha256"]]))
    return sum(len(f["chunks"]) for f in new["files"]), changed_bytes


def canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- steps, each in its own process so its peak memory is its own --------------------------------


def _deep_size(root: object) -> int:
    """The bytes of every object reachable from `root` (classes and modules left out): what a cache entry holds.
    (The resident set cannot say it: memory the building freed is not given back to the system at once.)"""
    seen: set[int] = set()
    total, todo = 0, [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType)):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: ru_maxrss would carry the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step(name: str, folder: Path, baseline: bool) -> dict[str, float]:
    """One measured step; the imports are done (and their memory counted in `import_mb`) before the clock starts."""
    import client.plan as client_plan
    import client.sharing  # noqa: F401  # imported before the clock, as a running daemon has them
    import client.state  # noqa: F401
    from shared import manifest as manifest_mod
    import tracker.planner  # noqa: F401  # imported before the clock starts, like the two above

    # Only the bytes a step has in hand when it starts are read first (the client's own steps read client.db):
    # the new build's manifest for an update (rebuilt from the delta), and nothing for verify, ls and the daemon.
    indexed_client = hasattr(client_plan, "Target")
    uses_old = name in ("tracker-plan", "tracker-plan-kept", "client-update") and not (name == "client-update" and indexed_client)
    uses_new = name not in ("client-verify", "client-ls", "daemon-start", "update-from-delta")
    old = (folder / "1.json").read_bytes() if uses_old else b""
    new = (folder / "2.json").read_bytes() if uses_new else b""
    sample = [m.group(0).decode() for m in itertools.islice(re.finditer(rb"[0-9a-f]{64}(?=\",[0-9])", new), 4096)]
    extra: dict[str, float] = {}
    before = _peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    if name == "parse":
        manifest_mod.parse(new)
    elif name == "client-update" and indexed_client:
        # What `mist update` does with the new build's manifest (verified; rebuilt from the delta) before it fetches
        # anything, in client.db as an earlier install left it: the held build's bytes (the delta's base) and its
        # kept index read, the new build's index made from them, what the disk holds by the installed build, the
        # installed chunks the plan needs located, the plan, the "removes most" check, and the new install
        # recorded with its index kept.
        from client.state import State

        state = State(folder / "home")
        held = state.held_manifest("big")
        install = state.get("big")
        assert held is not None and install is not None, "the bench's client.db was not made"
        digest = hashlib.sha256(new).hexdigest()
        index = state.index_of(digest, new, held)
        del held
        _plan_and_record(state, install, index, digest, new)
    elif name == "update-from-delta":
        # All of `mist update` from the tracker's answer to the install recorded, where "client-update" starts from
        # the new manifest's bytes in hand: the delta applied (this tree: the entries form from the kept manifest's
        # file into the new one's; the code before: the whole-manifest form between the two manifests' bytes),
        # the signature checked (of the digest; before: of the bytes), the new index, the plan, the manifest copied
        # into the game folder's .mist (as the swap's journal needs it), the install recorded.
        from client.state import State
        from shared import manifest_delta, signing

        state = State(folder / "home")
        install = state.get("big")
        assert install is not None, "the bench's client.db was not made"
        signed = json.loads((folder / "signed.json").read_text())
        digest, into = signed["digest"], folder / "target-manifest.json"
        entries = hasattr(manifest_delta, "apply_to_file")
        delta = (folder / ("delta-entries.bin" if entries else "delta-whole.bin")).read_bytes()
        before = _peak_mb()
        started, cpu = time.perf_counter(), time.process_time()
        if entries:
            from shared.durable import link_or_copy_atomic as copy_atomic

            kept = state.held_manifest_file("big")
            assert kept is not None, "the install's manifest is not kept as a file"
            incoming = state.incoming_manifest(digest)
            with kept[1].open("rb") as held_file, incoming.open("wb") as out:
                rebuilt = manifest_delta.apply_to_file(held_file, delta, digest, out)
            signing.verify(signed["public_key"], signing.manifest_digest(digest), signed["digest_signature"])
            index = state.index_rebuilt(digest, kept[0], rebuilt, incoming)
            copy_atomic(incoming, into)
            recorded: Any = incoming
        else:
            from shared.durable import write_atomic

            held = state.held_manifest("big")
            assert held is not None
            data = manifest_delta.apply(held[1], delta, digest)
            signing.verify(signed["public_key"], data, signed["signature"])
            index = state.index_of(digest, data, held)
            del held
            write_atomic(into, data)
            recorded = data
        _plan_and_record(state, install, index, digest, recorded)
    elif name == "client-update":
        # The code before: the installed and the target manifests parsed, what the disk holds by the installed one,
        # the installed chunks the plan needs located (every one, before InstalledChunks), the plan made.
        installed, target = manifest_mod.parse(old), manifest_mod.parse(new)
        on_disk = {f.path: (f.sha256, f.executable) for f in installed.files}
        root = "/games/big/"
        files = [(root + f.path, f) for f in installed.files]
        local = (client_plan.InstalledChunks(files) if hasattr(client_plan, "InstalledChunks")
                 else client_plan.index_chunks(files))
        made = client_plan.plan(target, on_disk, list(on_disk), local)
        if hasattr(client_plan, "removes_most"):
            client_plan.removes_most(installed, made)
        target.digest()  # the installer of the code before took the digest this way
    elif name == "client-verify":
        # `mist verify GAME` before it hashes a file: the install looked up and its files and links listed.
        from client.state import State

        state = State(folder / "home")
        install = state.get("big")
        assert install is not None, "the bench's client.db was not made"
        build = install.build if hasattr(install, "build") else install.manifest  # type: ignore[attr-defined]  # the code before
        files = [(f.path, f.size, f.sha256, f.executable) for f in (build.infos() if hasattr(build, "infos") else build.files)]
        links = list(build.links)
        extra["files"] = len(files) + len(links)
    elif name == "client-ls":
        from client.state import State

        state = State(folder / "home")
        extra["installs"] = len(state.installed_versions())
    elif name == "daemon-start":
        # The daemon's sharing library at a start: every install's build as what it serves (client/sharing.py).
        from client.sharing import Library
        from client.state import State

        library = Library(State(folder / "home"))
        library.refresh()
        extra["chunks"] = sum(len(b.chunks) for b in library.builds.values())
    elif name in ("tracker-plan", "tracker-plan-kept"):
        # The tracker's plan route for that update (the client sends the files it writes): "tracker-plan" with
        # nothing kept yet (it parses, or indexes, both builds), "-kept" with both already in the route's cache:
        # what each further request costs, in CPU and in memory allocated (tracemalloc's peak, a second run).
        write = json.loads((folder / "write.json").read_text())
        if baseline:  # the code before: parsed manifests kept
            load: Any = manifest_mod.parse
        else:
            from shared.build_index import BuildIndex

            load = BuildIndex.scan
        if name == "tracker-plan":
            _tracker_plan(load(new), load(old), write, baseline)
        else:
            target, held = load(new), load(old)
            extra["kept_mb"] = _deep_size((target, held)) / MB
            before = _peak_mb()
            started, cpu = time.perf_counter(), time.process_time()
            _tracker_plan(target, held, write, baseline)
            extra.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, peak_mb=_peak_mb())
            import tracemalloc

            tracemalloc.start()
            _tracker_plan(target, held, write, baseline)
            extra["request_mb"] = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
    elif name == "seeder-build":
        # What the seeder keeps of a build it serves, made from the stored manifest on a read ticket's first use.
        kept: Any
        if baseline:  # the code before: the parse, a set of every chunk and a dict of every file
            parsed = manifest_mod.parse(new)
            kept = (frozenset(parsed.chunk_sizes()), {f.sha256: f for f in parsed.files})
            del parsed
            has = kept[0].__contains__
        else:
            from shared.build_index import BuildIndex

            kept = BuildIndex.scan(new)
            has = kept.has_chunk
        extra.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, peak_mb=_peak_mb())
        looked = time.process_time()
        for _ in range(25):
            assert all(map(has, sample)), "a chunk of the build was not found"
        extra["lookup_us"] = (time.process_time() - looked) / len(sample) / 25 * 1e6
        extra["held_mb"] = _deep_size(kept) / MB
    elif name == "daemon-library":
        # What the daemon's sharing library keeps of a 'installed' build to serve friends (client/sharing.py).
        if baseline:  # the code before: where every chunk lies, and a set of them, beside the parsed manifest
            from client.sharing import Location  # type: ignore[attr-defined]  # only the code before has it

            parsed = manifest_mod.parse(new)
            where: dict[str, Any] = {}
            for entry in parsed.files:
                for offset, ref in entry.offsets():
                    where.setdefault(ref.sha256, Location(Path("/games/big") / entry.path, offset, ref.size))
            kept = (parsed, where, frozenset(parsed.chunk_sizes()))
            has = kept[2].__contains__
        else:
            from shared.build_index import BuildIndex

            kept = BuildIndex.scan(new)
            has = kept.chunk_names.__contains__
        extra.update(seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu, peak_mb=_peak_mb())
        looked = time.process_time()
        assert all(map(has, sample)), "a chunk of the build was not found"
        extra["lookup_us"] = (time.process_time() - looked) / len(sample) * 1e6
        extra["held_mb"] = _deep_size(kept) / MB
    else:
        raise BenchError(f"unknown step {name!r}")
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu, "peak_mb": _peak_mb(),
            "inputs_mb": before, **extra}  # a step that measures more after its work gives its own times


def _plan_and_record(state: Any, install: Any, index: Any, digest: str, manifest: Any) -> None:
    """The rest of an update once the new build's index is made: what the disk holds by the installed build,
    the installed chunks the plan needs located, the plan, the "removes most" check, the install recorded."""
    import client.plan as client_plan

    installed = install.build
    on_disk = {f.path: (f.sha256, f.executable) for f in installed.infos()}
    local = client_plan.InstalledBuilds([(str(install.dir), installed)])
    made = client_plan.plan(client_plan.Target(index, digest), on_disk, list(on_disk), local)
    client_plan.removes_most(installed, made)
    state.record("big", install.dir, manifest, digest, "2")
    state.close()


def make_home(folder: Path, code: Path) -> None:
    """A MIST_HOME with build 1 installed and its index kept, as the client of the code in `code` leaves it (in a
    process of its own, run before each step: what an install of build 1 and a daemon's start left behind)."""
    out = subprocess.run([sys.executable, __file__, "_home", str(folder), str(code)], capture_output=True, text=True)
    if out.returncode:
        raise BenchError(f"making the client.db failed:\n{out.stderr[-3000:]}")


def _make_home(folder: Path) -> None:
    from client.state import State

    shutil.rmtree(folder / "home", ignore_errors=True)
    (folder / "home").mkdir()
    data = (folder / "1.json").read_bytes()
    state = State(folder / "home")
    digest = hashlib.sha256(data).hexdigest()
    state.record("big", Path("/games/big"), data, digest, "1")
    if hasattr(state, "index"):
        state.index(digest)  # made and kept, as the install (or the daemon's first start) keeps it
    elif hasattr(state, "keep_build_index"):  # the code before: the daemon's sharing kept it in client.db
        from shared.build_index import BuildIndex

        state.keep_build_index(digest, BuildIndex.scan(data).to_bytes())
    state.close()


def _tracker_plan(target: Any, held: Any, write: list[str], baseline: bool) -> None:
    """What tracker/routes/updates.py `plan` does with the builds (no patches stored, none to make)."""
    from tracker.planner import held_contents, patch_pairs, plan_update, write_chunks

    if baseline:
        paths = {f.path for f in target.files}
        assert all(p in paths for p in write)
        patch_pairs(target, [held], write)
        by_path = {f.path: f for f in target.files}
        targets = {by_path[p].sha256 for p in write}
        have = held_contents([held]) | set()
        sizes = {ref.sha256: ref.size for p in write for ref in by_path[p].chunks}
    else:
        made = target.files_at(write)
        assert len(made) == len(write)
        patch_pairs(target, [held], write, made)
        targets = {f.sha256 for f in made.values()}
        have = held_contents([held], [])
        sizes = {ref.sha256: ref.size for f in made.values() for ref in f.chunks}
    assert targets and not any(t in have for t in targets)
    if baseline:
        plan_update(target, write, [held], {h: sizes[h] for h in write_chunks(target, write)}, [], [])
    else:
        plan_update(target, write, [held], sizes, [], [], 1, [], made)


def _make_deltas(folder: Path) -> None:
    """Build 2's manifest as the tracker sends it to a friend holding build 1 (both forms), and signed."""
    from shared import manifest_delta, signing

    old, new = (folder / "1.json").read_bytes(), (folder / "2.json").read_bytes()
    (folder / "delta-whole.bin").write_bytes(manifest_delta.make(old, new))
    (folder / "delta-entries.bin").write_bytes(manifest_delta.make_entries(old, new))
    key, digest = signing.Signer.generate(), hashlib.sha256(new).hexdigest()
    (folder / "signed.json").write_text(json.dumps({
        "public_key": key.public_key, "digest": digest, "signature": key.sign(new),
        "digest_signature": key.sign(signing.manifest_digest(digest))}))


def _made(gb: int, folder: Path) -> Any:
    """Build 1 and build 2 of `gb` GB written into `folder` (in a process of its own); what `make` says of them."""
    made = subprocess.run([sys.executable, __file__, "_make", str(gb), str(folder)], capture_output=True, text=True)
    if made.returncode:
        raise BenchError(f"making the {gb} GB manifests failed:\n{made.stderr[-3000:]}")
    return json.loads(made.stdout)


def before_after(name: str, folder: Path, baseline: Path, home: bool) -> tuple[dict[str, float], dict[str, float]]:
    """One step with the baseline's code, then with this tree's; `home`: on a MIST_HOME made afresh by each code
    before its run (the steps that read client.db)."""
    if home:
        make_home(folder, baseline)
    old = run_step(name, folder, baseline)
    if home:
        make_home(folder, REPO)
    return old, run_step(name, folder, REPO)


def run_step(name: str, folder: Path, code: Path) -> dict[str, float]:
    """One step in a new process, with the Mist code in `code` (this tree, or a baseline checkout)."""
    out = subprocess.run([sys.executable, __file__, "_step", name, str(folder), str(code)], capture_output=True, text=True)
    if out.returncode:
        raise BenchError(f"step {name} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout))


def transfer(folder: Path) -> dict[str, int]:
    """What a friend holding build 1 downloads for build 2's manifest: today the whole of it, gzip-compressed
    as aiohttp's enable_compression sends it (zlib's default level)."""
    from shared import manifest_delta

    old, new = (folder / "1.json").read_bytes(), (folder / "2.json").read_bytes()
    return {"json": len(new), "gzip": len(gzip.compress(new, 6)), "delta": len(manifest_delta.make(old, new))}


def parts_sent(old: bytes, new: bytes, part: int) -> int:
    """'A binary manifest in parts': the new manifest cut into parts of about `part` bytes at file-entry and chunk
    boundaries (content-defined, so an edit shifts no later cut), of which a friend fetches those it lacks."""
    def cut(data: bytes) -> list[bytes]:
        out, at = [], 0
        while at < len(data):
            end = data.find(b"],[", at + part)
            end = len(data) if end < 0 else end + 2
            out.append(data[at:end])
            at = end
        return out
    held = {hashlib.sha256(p).digest() for p in cut(old)}
    return sum(len(p) + 32 for p in cut(new) if hashlib.sha256(p).digest() not in held)  # plus the list of part ids


def seeder(sizes: list[int], work: Path, baseline: Path) -> str:
    """What the seeder holds per build it serves, and the daemon's sharing library per install: before (the parsed
    manifest's sets and dicts) and after (the index)."""
    rows = ["| build, holder | chunks | make it: CPU s | peak MB | held MB | chunk check, us each |",
            "|---|---:|---:|---:|---:|---:|"]
    for gb in sizes:
        folder = work / f"s{gb}"
        folder.mkdir(parents=True, exist_ok=True)
        chunks = _made(gb, folder)[0]
        for name in ("seeder-build", "daemon-library"):
            old, new = run_step(name, folder, baseline), run_step(name, folder, REPO)
            print(f"{gb} GB {name}: before {old}, after {new}", file=sys.stderr)
            rows.append(f"| {gb} GB, {name.split('-')[0]} | {chunks:,} | {old['cpu_seconds']:.2f} -> {new['cpu_seconds']:.2f} | "
                        f"{old['peak_mb']:.0f} -> {new['peak_mb']:.0f} | {old['held_mb']:.0f} -> {new['held_mb']:.0f} | "
                        f"{old['lookup_us']:.2f} -> {new['lookup_us']:.2f} |")
        shutil.rmtree(folder)
    return "\n".join(rows)


def plans(sizes: list[int], work: Path, baseline: Path) -> str:
    """The tracker's plan route for the update: with nothing kept (it makes what it keeps of both builds) and with
    both kept (each further request), before (parsed manifests kept) and after (build indexes kept)."""
    rows = ["| build | chunks | files written | first plan, nothing kept: CPU s, peak MB | kept of the two builds MB | "
            "each further plan: CPU s | each further plan: memory allocated MB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for gb in sizes:
        folder = work / f"p{gb}"
        folder.mkdir(parents=True, exist_ok=True)
        chunks = _made(gb, folder)[0]
        cold = run_step("tracker-plan", folder, baseline), run_step("tracker-plan", folder, REPO)
        kept = run_step("tracker-plan-kept", folder, baseline), run_step("tracker-plan-kept", folder, REPO)
        print(f"{gb} GB: first {cold}, kept {kept}", file=sys.stderr)
        written = len(json.loads((folder / "write.json").read_text()))
        rows.append(f"| {gb} GB | {chunks:,} | {written} | {cold[0]['cpu_seconds']:.2f} -> {cold[1]['cpu_seconds']:.2f}, "
                    f"{cold[0]['peak_mb']:.0f} -> {cold[1]['peak_mb']:.0f} | {kept[0]['kept_mb']:.0f} -> {kept[1]['kept_mb']:.0f} | "
                    f"{kept[0]['cpu_seconds']:.3f} -> {kept[1]['cpu_seconds']:.3f} | "
                    f"{kept[0]['request_mb']:.1f} -> {kept[1]['request_mb']:.1f} |")
        print(rows[-1], file=sys.stderr)
        shutil.rmtree(folder)
    return "\n".join(rows)


def options(sizes: list[int], work: Path) -> str:
    """The ways to send build 2's manifest to a friend holding build 1: sizes and times."""
    from shared import manifest_delta

    rows = ["| build | whole, gzip -6 MB | whole, zstd -19 MB | parts of 64 KB MB | zstd delta -3 KB (make s / apply s) | "
            "zstd delta -19 KB (make s) |", "|---|---:|---:|---:|---:|---:|"]
    import zstandard
    for gb in sizes:
        folder = work / f"o{gb}"
        folder.mkdir(parents=True, exist_ok=True)
        _made(gb, folder)
        old, new = (folder / "1.json").read_bytes(), (folder / "2.json").read_bytes()
        t = time.perf_counter()
        fast = manifest_delta.make(old, new)
        make_s = time.perf_counter() - t
        t = time.perf_counter()
        assert manifest_delta.apply(old, fast, hashlib.sha256(new).hexdigest()) == new
        apply_s = time.perf_counter() - t
        t = time.perf_counter()
        small = manifest_delta.make(old, new, 19) if gb <= 10 else b""  # 190 s at 10 GB already
        small_s = time.perf_counter() - t
        whole_z = len(zstandard.ZstdCompressor(level=19).compress(new)) if gb <= 10 else 0
        rows.append(f"| {gb} GB | {len(gzip.compress(new, 6)) / MB:.1f} | {whole_z / MB:.1f} | "
                    f"{parts_sent(old, new, 64 * 1024) / MB:.2f} | {len(fast) / 1000:.0f} ({make_s:.1f} / {apply_s:.1f}) | "
                    f"{len(small) / 1000:.0f} ({small_s:.1f}) |")
        print(rows[-1], file=sys.stderr)
        shutil.rmtree(folder)
    return "\n".join(rows)


def manifests(sizes: list[int], work: Path, baseline: Path) -> str:
    """Each step with the baseline's code and with this tree's, alternately, in the same run: "before -> after"."""
    rows = ["| build | chunks | manifest JSON MB | manifest sent: whole (gzip) MB -> delta KB | update moves, x what "
            "changed (100 MB) | parse: CPU s, peak MB | client update bookkeeping: CPU s, peak MB | "
            "tracker plan: CPU s, peak MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for gb in sizes:
        folder = work / f"m{gb}"
        folder.mkdir(parents=True, exist_ok=True)
        chunks, changed_bytes = _made(gb, folder)
        sent = transfer(folder)
        cells = []
        for name in ("parse", "client-update", "tracker-plan"):
            old, new = before_after(name, folder, baseline, home=name == "client-update")
            cells.append(f"{old['cpu_seconds']:.2f} -> {new['cpu_seconds']:.2f}, {old['peak_mb']:.0f} -> {new['peak_mb']:.0f}")
            print(f"{gb} GB {name}: before {old}, after {new}", file=sys.stderr)
        # Random chunk bytes do not compress: the store holds them whole, and that is what an update moves.
        whole, delta = changed_bytes + sent["gzip"], changed_bytes + sent["delta"]
        rows.append(f"| {gb} GB | {chunks:,} | {sent['json'] / MB:.1f} | {sent['gzip'] / MB:.1f} -> {sent['delta'] / 1000:.0f} | "
                    f"{whole / changed_bytes:.3f} -> {delta / changed_bytes:.3f} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr)
        shutil.rmtree(folder)
    return "\n".join(rows)


def client(sizes: list[int], work: Path, baseline: Path) -> str:
    """The friend's bookkeeping of a big build (`mist update`, `verify`, `ls`, the daemon's start), each step with
    the baseline's code and this tree's in the same run, on a client.db where build 1 is installed."""
    steps = ("update-from-delta", "client-update", "client-verify", "client-ls", "daemon-start")
    rows = ["| build | chunks | " + " | ".join(f"{s}: CPU s, peak MB (of which inputs)" for s in steps) + " |",
            "|---|---:|" + "---:|" * len(steps)]
    for gb in sizes:
        folder = work / f"c{gb}"
        folder.mkdir(parents=True, exist_ok=True)
        chunks, _ = _made(gb, folder)
        made = subprocess.run([sys.executable, __file__, "_deltas", str(folder)], capture_output=True, text=True)
        if made.returncode:
            raise BenchError(f"making the {gb} GB deltas failed:\n{made.stderr[-3000:]}")
        cells = []
        for name in steps:
            old, new = before_after(name, folder, baseline, home=True)  # the update records build 2: afresh each time
            cells.append(f"{old['cpu_seconds']:.2f} -> {new['cpu_seconds']:.2f}, {old['peak_mb']:.0f} -> {new['peak_mb']:.0f} "
                         f"({new['inputs_mb']:.0f})")
            print(f"{gb} GB {name}: before {old}, after {new}", file=sys.stderr)
        rows.append(f"| {gb} GB | {chunks:,} | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr)
        shutil.rmtree(folder)
    return "\n".join(rows)


# --- push -------------------------------------------------------------------------------------


def make_units(folder: Path, count: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"unit{seed}-{i}.bin"
        with path.open("wb") as out:
            for _ in range(UNIT // (16 << 20)):
                out.write(rng.randbytes(16 << 20))
        paths.append(path)
    return paths


def build_folder(root: Path, size: int, units: list[Path]) -> list[Path]:
    """`size` bytes of files, each a hard link to one of `units` (so reading them reads real random bytes)."""
    if root.exists():
        shutil.rmtree(root)
    paths = []
    for i in range(max(1, size // UNIT)):
        path = root / f"data{i // 100:02d}" / f"pack{i:04d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(units[i % len(units)], path)
        paths.append(path)
    return paths


def rewrite(paths: list[Path], amount: int, seed: int) -> int:
    """Change `amount` bytes: each touched file becomes its own copy (breaking the link) with a run rewritten."""
    rng = random.Random(seed + 1000)  # not the units' seed: their byte stream, shifted, would chunk the same
    done, i = 0, 0
    while done < amount:
        path = paths[(i * 37) % len(paths)]
        data = bytearray(path.read_bytes())
        path.unlink()
        n = min(amount - done, UNIT // 2)
        at = rng.randrange(len(data) - n)
        data[at:at + n] = rng.randbytes(n)
        path.write_bytes(data)
        done += n
        i += 1
    return done


def timed(person: Person, *args: str, code: Path | None = None) -> tuple[dict[str, Any], float, float]:
    """The command's JSON, its wall time, and its peak memory in MB (GNU time's maximum resident set size).
    With `code`, mistpipe runs that checkout's code (PYTHONPATH wins over this venv's editable install)."""
    env = {**os.environ, "MIST_HOME": str(person.home), "MIST_PASSWORD": person.password, **_code_env(code)}
    started = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable.replace("python", "mistpipe"), *args, "--json"],
                         capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, cwd="/")
    seconds = time.perf_counter() - started
    if out.returncode:
        raise BenchError(f"mistpipe {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout), seconds, int(out.stderr.strip().splitlines()[-1]) / 1024


def _code_env(code: Path | None) -> dict[str, str]:
    return {"PYTHONPATH": str(code)} if code is not None and code != REPO else {}


class Server:
    """A `mist-server` on `data`, of this tree or of `code`, whose CPU time (its process group's, the children it
    waited for included) and peak resident set can be read: the server side of a push."""

    def __init__(self, data: Path, port: int, code: Path | None) -> None:
        env = {**os.environ, "MIST_ADMIN_PASSWORD": ADMIN_PASSWORD, **_code_env(code)}
        self.proc = subprocess.Popen([sys.executable.replace("python", "mist-server"), "--data", str(data), "--port",
                                      str(port)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env, text=True, start_new_session=True, cwd="/")
        tail = StderrTail(self.proc, "Mist is running at")
        deadline = time.monotonic() + 120
        while not tail.ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_group(self.proc)
                raise BenchError(f"mist-server did not start (exit {self.proc.poll()}):\n{tail.text()}")
        self.url = f"http://127.0.0.1:{port}"

    def cpu(self) -> float:
        """The server process's own CPU seconds: the tracker's and seeder's routes (its worker, which makes the
        patches in the background, is a process of its own and not counted)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def peak_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        stop_group(self.proc)


def pushed(admin: Person, server: Server, code: Path | None, *args: str) -> tuple[dict[str, Any], float, float, float]:
    """A push's JSON, wall s, mistpipe peak MB, and the server's CPU s for it."""
    before = server.cpu()
    answer, seconds, peak = timed(admin, "push", *args, code=code)
    return answer, seconds, peak, server.cpu() - before


def push(sizes: list[int], work: Path, baseline: Path | None = None, rescan: bool = True, after: Path = REPO) -> str:
    """Per size: a first push (reads all), 1% rewritten and pushed with --rescan (what every push cost before the
    push cache), another 1% rewritten and pushed as usual (reads only the rewritten files). With `baseline`, the
    first pushes and the cached one run that checkout's mistpipe and server, and a further 1% is pushed as usual
    by this tree's (or `after`'s), on a server of that code restarted on the same data: the cached push before and
    after."""
    rows = ["| build | first push s | 1% changed, --rescan (as before) s | 1% changed, push cache s | changed MB | "
            "uploaded MB (rescan / cache) | manifest sent KB (cache) | read MB (rescan / cache) | mistpipe peak MB "
            "(rescan / cache) | cached push, server CPU s (baseline -> this tree) | server peak MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    units = make_units(work / "units", 4, 1)
    first_code = baseline or REPO
    for gb in sizes:
        port = free_port()
        server = Server(work / f"server{gb}", port, first_code)
        try:
            admin = Person(work / f"admin{gb}", ADMIN_PASSWORD)
            subprocess.run([sys.executable.replace("python", "mistpipe"), "login", server.url, "--user", "admin"],
                           check=True, env={**os.environ, "MIST_HOME": str(admin.home), "MIST_PASSWORD": ADMIN_PASSWORD},
                           capture_output=True)
            game = f"big{gb}"
            admin.run("mistpipe", "new-game", game, "--title", f"{gb} GB")
            root = work / "build"
            paths = build_folder(root, gb * GB, units)
            _, first, _, first_cpu = pushed(admin, server, first_code, game, str(root), "--version", "1", "--level", "1")
            print(f"{gb} GB: first push {first:.0f} s, server CPU {first_cpu:.1f} s", file=sys.stderr)
            changed_bytes = rewrite(paths, gb * GB // 100, gb)
            full: dict[str, Any] = {"bytes_uploaded": 0, "bytes_read": 0}
            full_s = full_mb = float("nan")
            if rescan:
                full, full_s, full_mb, _ = pushed(admin, server, first_code, game, str(root), "--version", "2",
                                                  "--level", "1", "--rescan")
                rewrite(paths[1:], gb * GB // 100, gb + 500)
            cached, cached_s, cached_mb, cached_cpu = pushed(admin, server, first_code, game, str(root), "--version",
                                                             "3", "--level", "1")
            cpu = f"{cached_cpu:.1f}"
            if baseline is not None:
                print(f"{gb} GB: baseline cached push {cached_s:.1f} s, server CPU {cached_cpu:.1f} s", file=sys.stderr)
                server.stop()
                server = Server(work / f"server{gb}", port, after)  # the port the admin logged in to
                rewrite(paths[2:], gb * GB // 100, gb + 900)
                _, after_s, after_mb, after_cpu = pushed(admin, server, after, game, str(root), "--version", "4",
                                                         "--level", "1")
                cpu += f" -> {after_cpu:.1f} ({after_s:.1f} s wall, mistpipe peak {after_mb:.0f} MB)"
            rows.append(f"| {gb} GB | {first:.0f} | {full_s:.1f} | {cached_s:.1f} | {changed_bytes / MB:.0f} | "
                        f"{full['bytes_uploaded'] / MB:.1f} / {cached['bytes_uploaded'] / MB:.1f} | "
                        f"{cached['manifest_bytes'] / 1000:,.0f} | "
                        f"{full['bytes_read'] / MB:,.0f} / {cached['bytes_read'] / MB:,.0f} | {full_mb:.0f} / {cached_mb:.0f} | "
                        f"{cpu} | {server.peak_mb():.0f} |")
            print(rows[-1], file=sys.stderr)
            shutil.rmtree(root)
        finally:
            server.stop()
    return "\n".join(rows)


# --- install ----------------------------------------------------------------------------------

FRIEND, FRIEND_PASSWORD = "friend", "bench-friend-secret"


def prefill_push_cache(admin_home: Path, units_root: Path, build_root: Path) -> None:
    """Give every hard link under `build_root` the push cache row of the unit it links to (same signature:
    size, modification time and inode), so that pushing the folder reads none of it."""
    import sqlite3

    db = sqlite3.connect(admin_home / "push-cache.db")
    try:
        rows = db.execute(
            "SELECT size, mtime_ns, inode, params, sha256, chunks FROM chunked WHERE root = ?", (str(units_root.resolve()),)
        ).fetchall()
        by_inode = {row[2]: row for row in rows}
        key = str(build_root.resolve())
        filled = [
            (key, path.relative_to(build_root).as_posix(), *by_inode[path.stat().st_ino])
            for path in sorted(build_root.rglob("*.bin"))
        ]
        with db:
            db.executemany("INSERT OR REPLACE INTO chunked VALUES (?,?,?,?,?,?,?,?)", filled)
    finally:
        db.close()


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _Disk:
    """A sparse loop-mounted ext4 image to install into: the installer rightly refuses to start a 100 GB install
    without the room, which this disk does not have, and the image's used blocks say what was written (the
    install is stopped long before it would fill the real disk)."""

    def __init__(self, work: Path, name: str, size: int) -> None:
        self.mount = work / f"disk-{name}"
        self.mount.mkdir(parents=True, exist_ok=True)
        self.image = work / f"disk-{name}.img"
        subprocess.run(["truncate", "-s", str(int(size * 1.3) + 4 * GB), str(self.image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(self.image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.mount)], check=True)
        self.empty = self.used()

    def used(self) -> int:
        st = os.statvfs(self.mount)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def remove(self) -> None:
        subprocess.run(["umount", str(self.mount)], check=False)
        self.image.unlink(missing_ok=True)
        shutil.rmtree(self.mount, ignore_errors=True)


def measure_install(friend: Person, code: Path, game: str, disk: _Disk, stop_after: int) -> dict[str, Any]:
    """One install through a fresh daemon running `code`: first progress line and first bytes written (seconds
    from the request), the daemon's resident memory over time, stopped after `stop_after` bytes on the disk."""
    from update_bench import StderrTail, stop_group
    from client.daemon_address import read_address
    from client.errors import TrackerUnavailable
    from client.plain_http import post_lines

    env = {**os.environ, "MIST_HOME": str(friend.home), "MIST_PASSWORD": friend.password, "PYTHONPATH": str(code)}
    env.pop("MIST_CRASH_AT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "client", "daemon"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
        cwd=code,
    )
    samples: list[tuple[float, float]] = []
    stopped = threading.Event()
    try:
        tail = StderrTail(proc, "")  # drained on a thread; its lines say why, should the daemon not start
        deadline = time.monotonic() + 120
        while (address := read_address(friend.home)) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"mist daemon did not start (exit {proc.poll()}):\n{tail.text()}")
            time.sleep(0.1)  # polling for the address file the daemon writes once it listens
        idle_mb = _rss_mb(proc.pid)
        cpu_before = _cpu_seconds(proc.pid)
        cpu_at_stop = [0.0]
        started = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.25):
                samples.append((time.monotonic() - started, _rss_mb(proc.pid)))
                if disk.used() - disk.empty >= stop_after:
                    cpu_at_stop[0] = _cpu_seconds(proc.pid)
                    stopped.set()
                    stop_group(proc)  # enough seen: the rest of the install would only fill the disk
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        first_line = first_say = first_bytes = last_bytes = planned = 0.0
        total, finished = 0, False
        body = {"op": "install", "game": game, "dir": str(disk.mount / game), "version": "1", "yes": True}
        try:
            for item in post_lines(f"{address.url}/api/run", address.token, body):
                now = time.monotonic() - started
                first_line = first_line or now
                if "say" in item and not str(item["say"]).startswith("queued"):
                    first_say = first_say or now  # the installer's first word (the daemon's queue line is not)
                if "bar" in item:
                    total, planned = max(total, int(item["total"])), planned or now
                if "advance" in item:
                    first_bytes, last_bytes = first_bytes or now, now
                if "error" in item:
                    raise BenchError(f"the install failed: {item['error']}")
                if "result" in item:
                    finished = True
                    break
        except TrackerUnavailable:
            if not stopped.is_set():
                raise
        seconds = time.monotonic() - started
        last_bytes = seconds if stopped.is_set() else last_bytes
        cpu = (cpu_at_stop[0] if stopped.is_set() else _cpu_seconds(proc.pid)) - cpu_before
        written = disk.used() - disk.empty
        stop.set()
        sampler.join()
    finally:
        stop_group(proc)
    before_bytes = [mb for t, mb in samples if t < first_bytes] or [idle_mb]
    # While bytes were written: not the bookkeeping after the last one (the install's record, the sharing index).
    writing = [mb for t, mb in samples if first_bytes <= t <= last_bytes] or before_bytes[-1:]
    return {
        "first_line": first_line,
        "first_say": first_say,
        "planned": planned,
        "first_bytes": first_bytes,
        "seconds": seconds,
        "cpu": cpu,
        "written": written,
        "total": total,
        "finished": finished,
        "idle_mb": idle_mb,
        "before_bytes_peak_mb": max(before_bytes),
        "at_first_bytes_mb": writing[0],
        "writing_peak_mb": max(writing),
        "curve": [(round(t), round(mb)) for t, mb in samples[:: max(1, len(samples) // 16)]],
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (/proc/PID/stat fields 14 and 15, in clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone (the bench was interrupted)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def install(sizes: list[int], work: Path, baseline: Path, stop_after: int) -> str:
    """Per size: the build pushed from the push cache, then a fresh install by the baseline's daemon and by this
    tree's, each into an empty folder (deleted after)."""
    rows = [
        "| build | code | installer's first word s | bar with its total s | first bytes written s | CPU s | "
        "written GB (of) | daemon idle MB | peak before the first byte MB | at the first byte MB | peak while writing MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    units_root = work / "units"
    units = make_units(units_root, 4, 1)
    with ExitStack() as stack:
        url = start_mist_server(work / "server", free_port(), stack)
        admin = Person(work / "admin", ADMIN_PASSWORD)
        admin.run("mistpipe", "login", url, "--user", "admin")
        admin.run("mistpipe", "user", "add", FRIEND, env={"MIST_PASSWORD": FRIEND_PASSWORD})
        admin.run("mistpipe", "new-game", "bigunits", "--title", "the four units")
        admin.run("mistpipe", "push", "bigunits", str(units_root), "--version", "1", "--level", "1")
        for gb in sizes:
            game = f"big{gb}"
            root = work / f"build{gb}"
            build_folder(root, gb * GB, units)
            prefill_push_cache(admin.home, units_root, root)
            admin.run("mistpipe", "new-game", game, "--title", f"{gb} GB")
            pushed = json.loads(admin.run("mistpipe", "push", game, str(root), "--version", "1", "--level", "1", "--json"))
            print(f"{gb} GB pushed: read {pushed.get('bytes_read')}, uploaded {pushed.get('bytes_uploaded')}", file=sys.stderr)
            for label, code in (("before", baseline), ("after", REPO)):
                friend = Person(work / "homes" / f"{game}-{label}", FRIEND_PASSWORD)
                friend.run("mist", "login", url, "--user", FRIEND)
                friend.run("mist", "share", "off")
                disk = _Disk(work, f"{game}-{label}", gb * GB)
                try:
                    got = measure_install(friend, code, game, disk, stop_after if gb * GB > stop_after else 2 * gb * GB)
                finally:
                    disk.remove()
                    shutil.rmtree(friend.home, ignore_errors=True)
                print(f"{gb} GB {label}: {json.dumps(got)}", file=sys.stderr)
                rows.append(
                    f"| {gb} GB | {label} | {got['first_say']:.1f} | {got['planned']:.1f} | {got['first_bytes']:.1f} | "
                    f"{got['cpu']:.0f} | {got['written'] / GB:.1f}{'' if got['finished'] else ' (stopped)'} "
                    f"({got['total'] / GB:.1f}) | {got['idle_mb']:.0f} | {got['before_bytes_peak_mb']:.0f} | "
                    f"{got['at_first_bytes_mb']:.0f} | {got['writing_peak_mb']:.0f} |"
                )
                print(rows[-1], file=sys.stderr)
            shutil.rmtree(root)
    return "\n".join(rows)


def main() -> None:
    if sys.argv[1:2] == ["_make"]:  # in a process of its own, so the steps' parent stays small
        print(json.dumps(make(int(sys.argv[2]) * GB, Path(sys.argv[3]))))
        return
    if sys.argv[1:2] == ["_deltas"]:
        _make_deltas(Path(sys.argv[2]))
        return
    if sys.argv[1:2] == ["_home"]:
        sys.path.insert(0, sys.argv[3])
        _make_home(Path(sys.argv[2]))
        return
    if sys.argv[1:2] == ["_step"]:
        sys.path.insert(0, sys.argv[4])
        print(json.dumps(step(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]) != REPO)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["manifests", "client", "seeder", "plan", "options", "push", "install"])
    parser.add_argument("--sizes", default="1,10,100", help="build sizes in GB, comma-separated")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of the code to compare with (manifests): `git archive 661a720 | tar -x -C DIR`")
    parser.add_argument("--stop-after", type=float, default=12.0,
                        help="install: stop a larger build's install after this many GB written")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--no-rescan", action="store_true", help="push: skip the --rescan push (an hour at 100 GB)")
    parser.add_argument("--after", type=Path, default=REPO,
                        help="push: a checkout of the code to compare with --baseline (default: this tree)")
    args = parser.parse_args()
    for code in {REPO, args.after.resolve(), *([args.baseline.resolve()] if args.baseline else [])}:
        compile_bytecode(code)  # both sides of a comparison start from compiled bytecode, as a friend's install does
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="mist-big-", dir=args.work) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        if args.part == "manifests":
            if args.baseline is None:
                parser.error("manifests needs --baseline DIR, a checkout of the code to compare with")
            table = manifests(sizes, work, args.baseline.resolve())
        elif args.part == "client":
            if args.baseline is None:
                parser.error("client needs --baseline DIR, a checkout of the code to compare with")
            table = client(sizes, work, args.baseline.resolve())
        elif args.part == "seeder":
            if args.baseline is None:
                parser.error("seeder needs --baseline DIR, a checkout of the code before the build index")
            table = seeder(sizes, work, args.baseline.resolve())
        elif args.part == "push":
            table = push(sizes, work, args.baseline.resolve() if args.baseline else None, not args.no_rescan,
                         args.after.resolve())
        elif args.part == "plan":
            if args.baseline is None:
                parser.error("plan needs --baseline DIR, a checkout of the code before the plan read build indexes")
            table = plans(sizes, work, args.baseline.resolve())
        elif args.part == "install":
            if args.baseline is None:
                parser.error("install needs --baseline DIR, a checkout of the code to compare with")
            table = install(sizes, work, args.baseline.resolve(), int(args.stop_after * GB))
        else:
            table = options(sizes, work)
    print(table)
    print(f"\n({args.part}, sizes {args.sizes} GB: {time.perf_counter() - started:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
