"""The anchor table: how many bytes each way of updating moves, on real release pairs.

A client holding the old build wants the new one. This script measures what
the well-known ways of shipping that update cost on the pairs of
bench/corpus.py, so Mist's own figure (the `--mist` column, measured through the
real product) can be read against them:

- the whole new build as one `tar | zstd -19 -T2` (no update logic at all);
- fixed 1 MiB chunks (Steam-like: files cut at 1 MiB boundaries, chunks the old
  build lacks fetched, each zstd -9);
- FastCDC chunks alone (shared.chunking, dedup across the build, each zstd -9):
  Mist without patches;
- per-file deltas for the changed files, added files shipped whole (zstd -19):
  librsync `rdiff` (+ zstd -19; the signatures a client would upload are
  counted apart), the real `zstd -19 --long --patch-from` CLI, and HDiffPatch
  with the setting bench/patch_algorithms.py chose;
- best per-file: every file by whichever of those deltas or its chunks is
  smallest (what a perfect per-file planner achieves).

Each (pair, method) runs in a fresh process, two at a time; results are cached
per (pair, method) in ~/.cache/mist-bench/delta_bench (`--fresh` measures
again). Create/apply seconds are CPU seconds (children included for the CLIs),
except the tar.zst row, which is wall time of a two-thread pipeline.

Usage: .venv/bin/python bench/delta_bench.py [--pairs a,b|all] [--mist] [--fresh] [--out FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import zstandard  # noqa: E402

import patch_algorithms as pa  # noqa: E402
import update_bench as ub  # noqa: E402
from corpus import CACHE_DIR, PAIR_SPECS, Pair, corpus_pairs  # noqa: E402
from shared.chunking import DEFAULT_PARAMS, chunk_bytes  # noqa: E402

DEFAULT_PAIRS = ub.DEFAULT_PAIRS + ("esbuild-jump",)  # one pair per kind of update; `--pairs all` adds biome and libreoffice-core
FIXED_CHUNK = 1 << 20
CHUNK_LEVEL = 9  # Mist's chunk level (shared/compression.py); the fixed-chunk anchor uses it too
WHOLE_LEVEL = 19  # added files and the tar.zst anchor
# HDiffPatch as bench/results/patch_algorithms.md found best: hdiffpatch's own lzma at level 9 made the
# smallest total (7% under the raw diff as one zstd -19 frame, at the same creation speed).
HDIFF_SETTING = "hdiff/lzma-9"
RESULT_CACHE = CACHE_DIR / "delta_bench"
CACHE_VERSION = 1
DEFAULT_OUT = REPO / "bench" / "results" / "delta_bench.md"
MB = 1_000_000


# --- the builds -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """One file of the new build that is not already on the client at the same path."""

    rel: str
    new: str
    new_size: int
    old: str | None  # the old build's file at the same path, if any (then the content differs)
    old_size: int


@dataclass(frozen=True)
class Diff:
    """What separates the two builds, file by file (regular files only, as Mist ships them)."""

    changed: list[FileChange]
    added: list[FileChange]
    unchanged: int
    new_files: int
    new_bytes: int

    @property
    def to_ship(self) -> list[FileChange]:
        return self.changed + self.added


def build_diff(pair: Pair) -> Diff:
    old, new = pa.regular_files(pair.old_dir), pa.regular_files(pair.new_dir)
    changed: list[FileChange] = []
    added: list[FileChange] = []
    unchanged = new_bytes = 0
    for rel in sorted(new):
        n = new[rel]
        size = n.stat().st_size
        new_bytes += size
        if size > pa.MAX_FILE:
            raise SystemExit(f"{pair.name}: {rel} is {size / MB:.0f} MB, over the {pa.MAX_FILE // MB} MB limit")
        o = old.get(rel)
        if o is None:
            added.append(FileChange(rel, str(n), size, None, 0))
        elif pa.same_bytes(o, n):
            unchanged += 1
        else:
            changed.append(FileChange(rel, str(n), size, str(o), o.stat().st_size))
    return Diff(changed, added, unchanged, len(new), new_bytes)


# --- measuring ------------------------------------------------------------------------------


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_all() -> float:
    """CPU seconds of this process and its finished children: CLI tools' work is counted too."""
    return time.process_time() + children_cpu()


@dataclass
class FileCost:
    """Bytes and CPU seconds to get one file of the new build by one method."""

    size: int
    create_s: float
    apply_s: float
    extra: int = 0  # rdiff: the signature the client uploads; chunks: nothing


def whole_file(data: bytes) -> FileCost:
    """An added file has nothing to patch from: zstd -19, as every per-file method ships it."""
    start = time.process_time()
    packed = pa.zstd_compress(data, WHOLE_LEVEL)
    made = time.process_time()
    pa.zstd_decompress(packed)
    return FileCost(len(packed), made - start, time.process_time() - made)


def per_file_rdiff(old: bytes, new: bytes) -> FileCost:
    variants = {v.name: v for v in pa.measure_rdiff(old, new)}
    v = variants["rdiff + zstd-19"]
    return FileCost(v.size, v.create_s, v.apply_s, variants["rdiff signature"].size)


def per_file_hdiff(old: bytes, new: bytes) -> FileCost:
    start = time.process_time()
    raw = pa.hdiff_raw(old, new)
    packed = pa.hdiffpatch.recompress(raw, pa.hdiff_configs(len(raw))[HDIFF_SETTING])
    made = time.process_time()
    rebuilt = pa.hdiffpatch.apply(old, packed)
    applied = time.process_time()
    pa.check("hdiff", rebuilt, new)
    return FileCost(len(packed), made - start, applied - made)


def cli_long(*sizes: int) -> int:
    """The window `--long=N` must cover: the old file (the prefix) and the new one."""
    return pa.window_log(*sizes)


def zstd_cli(args: list[str]) -> None:
    """Run the zstd command; its stderr (1.5.4 prints "[Optimal parser notes]" even with -q) only on failure."""
    proc = subprocess.run(["zstd", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`zstd {' '.join(args)}` exited {proc.returncode}: {proc.stderr[-2000:]}")


def per_file_cli(old_path: str | None, new_path: str, tmp: Path) -> FileCost:
    """The real `zstd -19 --long=N --patch-from=old new -o patch` (or whole, for an added file), then
    decompress it again; CPU of the child processes."""
    new_size = os.path.getsize(new_path)
    n = cli_long(new_size, os.path.getsize(old_path) if old_path else 0)
    patch_from = [f"--patch-from={old_path}"] if old_path else []
    patch, out = tmp / "patch.zst", tmp / "out"
    start = cpu_all()
    zstd_cli(["-q", "-f", f"-{WHOLE_LEVEL}", f"--long={n}", *patch_from, new_path, "-o", str(patch)])
    made = cpu_all()
    zstd_cli(["-q", "-f", "-d", f"--long={n}", *patch_from, str(patch), "-o", str(out)])
    applied = cpu_all()
    if out.read_bytes() != Path(new_path).read_bytes():
        raise RuntimeError(f"zstd --patch-from did not rebuild {new_path}")
    return FileCost(patch.stat().st_size, made - start, applied - made)


def task_per_file(method: str, diff: Diff) -> dict[str, Any]:
    """One per-file method over every changed and added file of a pair."""
    files: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="mist-delta-") as tmp:
        for f in diff.to_ship:
            if method == "patch-from":
                cost = per_file_cli(f.old, f.new, Path(tmp))
            else:
                new = Path(f.new).read_bytes()
                if f.old is None:
                    cost = whole_file(new)
                else:
                    old = Path(f.old).read_bytes()
                    cost = per_file_rdiff(old, new) if method == "rdiff" else per_file_hdiff(old, new)
            files[f.rel] = cost.__dict__
    return {"files": files}


def read_chunks(path: str, cut: Callable[[bytes], list[tuple[str, int]]]) -> tuple[bytes, list[tuple[str, int]]]:
    data = Path(path).read_bytes()
    return data, cut(data)


def cut_fastcdc(data: bytes) -> list[tuple[str, int]]:
    return [(c.sha256, c.size) for c in chunk_bytes(data, DEFAULT_PARAMS).chunks]


def cut_fixed(data: bytes) -> list[tuple[str, int]]:
    return [(hashlib.sha256(data[o:o + FIXED_CHUNK]).hexdigest(), min(FIXED_CHUNK, len(data) - o))
            for o in range(0, len(data), FIXED_CHUNK)]


def task_chunks(method: str, pair: Pair) -> dict[str, Any]:
    """Chunks of the new build the old build lacks (dedup across the whole build), each zstd -9.
    Creation = cutting and hashing the new build and compressing those chunks (the old build's
    chunk list is in its manifest); apply = decompressing them. Also, per changed/added file, the
    chunks that file alone would need, for the best-per-file column."""
    cut = cut_fastcdc if method == "fastcdc" else cut_fixed
    have: set[str] = set()
    for path in pa.regular_files(pair.old_dir).values():
        have.update(h for h, _ in read_chunks(str(path), cut)[1])
    packed: dict[str, int] = {}
    file_chunks: dict[str, list[str]] = {}
    create_s = apply_s = 0.0
    new_files = pa.regular_files(pair.new_dir)
    for rel in sorted(new_files):
        (data, chunks), cut_s = pa.cpu(lambda: read_chunks(str(new_files[rel]), cut))
        create_s += cut_s
        view, offset, missing = memoryview(data), 0, []
        for digest, size in chunks:
            if digest not in have:
                missing.append(digest)
                if digest not in packed:
                    frame, pack_s = pa.cpu(lambda: pa.zstd_compress(view[offset:offset + size], CHUNK_LEVEL))
                    _, unpack_s = pa.cpu(lambda: pa.zstd_decompress(frame))
                    packed[digest] = len(frame)
                    create_s += pack_s
                    apply_s += unpack_s
            offset += size
        if missing:
            file_chunks[rel] = sorted(set(missing))
    return {"size": sum(packed.values()), "create_s": create_s, "apply_s": apply_s,
            "chunk_sizes": packed, "file_chunks": file_chunks}


def task_tar(pair: Pair) -> dict[str, Any]:
    """`tar -cf - | zstd -19 -T2` of the new build's regular files (staged by update_bench's helper,
    hard links, symlinks skipped as Mist does), then `zstd -d | tar -x`: wall seconds."""
    with tempfile.TemporaryDirectory(prefix="mist-delta-tar-") as tmp:
        build = ub.stage_build(pair.new_dir, Path(tmp) / "build")
        start = time.perf_counter()
        size = ub.tar_zst(build, Path(tmp) / "build.tar.zst", WHOLE_LEVEL)
        made = time.perf_counter()
        (Path(tmp) / "out").mkdir()
        ub.run_pipeline([["zstd", "-d", "-q", "-c", str(Path(tmp) / "build.tar.zst")],
                         ["tar", "-x", "-C", str(Path(tmp) / "out")]])
        applied = time.perf_counter()
        ub.check_tree(build.root, Path(tmp) / "out", f"tar.zst of {pair.name}")
    return {"size": size, "create_s": made - start, "apply_s": applied - made}


def run_task(pair: Pair, method: str) -> dict[str, Any]:
    if method == "tar":
        return task_tar(pair)
    if method in ("fixed", "fastcdc"):
        return task_chunks(method, pair)
    return task_per_file(method, build_diff(pair))


# Method -> rough CPU seconds per changed MB, so the longest tasks start first.
METHODS: dict[str, float] = {"patch-from": 1.3, "rdiff": 0.8, "hdiff": 0.4, "tar": 0.3, "fastcdc": 0.05, "fixed": 0.05}


def cache_key(pair: Pair, method: str) -> tuple[dict[str, Any], Path]:
    """What a cached result depends on, and where it lives. The whole-build archive depends only on the
    new build (panda3d and panda3d-jump share theirs), so it is made once per new build."""
    tools = {"zstd": ub.tool_version(["zstd", "--version"]),
             "libs": [pa.hdiffpatch_version(), zstandard.__version__, pa.pyrsync.__version__]}
    if method == "tar":
        name = "tar--" + pair.new_dir.relative_to(CACHE_DIR).as_posix().replace("/", "__")
        return {"version": CACHE_VERSION, "method": method, "new": str(pair.new_dir), **tools}, RESULT_CACHE / f"{name}.json"
    key = {"version": CACHE_VERSION, "method": method, "old": str(pair.old_dir), "new": str(pair.new_dir),
           "hdiff": HDIFF_SETTING, **tools}
    return key, RESULT_CACHE / f"{pair.name}--{method}.json"


def run_all(pairs: list[Pair], diffs: dict[str, Diff], fresh: bool, workers: int,
            say: Callable[[str], None]) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """Every (pair, method) not cached, longest first, `workers` at a time, each in a fresh spawned process;
    tasks with the same cache file (one new build's archive) run once. Returns the results and how many
    tasks were measured in this run."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    todo: dict[Path, tuple[float, Pair, str, dict[str, Any]]] = {}
    waiting: dict[Path, list[tuple[str, str]]] = {}
    for pair in pairs:
        changed_mb = sum(f.new_size for f in diffs[pair.name].to_ship) / MB
        for method, cost in METHODS.items():
            key, path = cache_key(pair, method)
            key = json.loads(json.dumps(key))  # as it reads back from the cache file
            if not fresh and path.is_file():
                saved = json.loads(path.read_text())
                if saved.get("key") == key:
                    results[(pair.name, method)] = saved["result"]
                    continue
            waiting.setdefault(path, []).append((pair.name, method))
            weight = cost * (diffs[pair.name].new_bytes / MB if method == "tar" else changed_mb)
            todo.setdefault(path, (weight, pair, method, key))
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_task, pair, method): (path, key)
                   for path, (_w, pair, method, key) in sorted(todo.items(), key=lambda t: -t[1][0])}
        for future in concurrent.futures.as_completed(futures):
            path, key = futures[future]
            result = future.result()
            for done in waiting[path]:
                results[done] = result
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"key": key, "result": result}))
            say(f"[{time.perf_counter() - started:5.0f}s] {', '.join(' '.join(d) for d in waiting[path])} done")
    return results, len(todo)


# --- best per file --------------------------------------------------------------------------


PER_FILE_METHODS = ("rdiff", "patch-from", "hdiff")


@dataclass
class Best:
    """Every file by its cheapest way: a per-file delta, or the FastCDC chunks it needs."""

    size: int = 0
    create_s: float = 0.0
    apply_s: float = 0.0
    chosen: dict[str, int] = field(default_factory=dict)


def best_per_file(diff: Diff, results: dict[str, dict[str, Any]]) -> Best:
    """Chooses per file by the chunks that file alone needs, then counts the chunks of all files
    that chose chunks once (as a client would fetch them), so the total is exact for that choice.
    Time = the chosen ways' times (a planner would still have to make the deltas to know)."""
    cdc = results["fastcdc"]
    chunk_size: dict[str, int] = cdc["chunk_sizes"]
    chunk_rate = cdc["create_s"] / max(sum(chunk_size.values()), 1), cdc["apply_s"] / max(sum(chunk_size.values()), 1)
    best = Best()
    fetched: set[str] = set()
    for f in diff.to_ship:
        needs = cdc["file_chunks"].get(f.rel, [])
        options = {m: results[m]["files"][f.rel] for m in PER_FILE_METHODS}
        options["chunks"] = {"size": sum(chunk_size[h] for h in needs), "create_s": 0.0, "apply_s": 0.0}
        way = min(options, key=lambda m: options[m]["size"])
        best.chosen[way] = best.chosen.get(way, 0) + 1
        if way == "chunks":
            fetched.update(needs)
        else:
            best.size += options[way]["size"]
            best.create_s += options[way]["create_s"]
            best.apply_s += options[way]["apply_s"]
    chunk_bytes_ = sum(chunk_size[h] for h in fetched)
    best.size += chunk_bytes_
    best.create_s += chunk_bytes_ * chunk_rate[0]
    best.apply_s += chunk_bytes_ * chunk_rate[1]
    return best


# --- Mist, through the real product ---------------------------------------------------------


@dataclass(frozen=True)
class MistRun:
    """What `mist update --json` reported, and how long the admin's push of the new build took."""

    bytes_downloaded: int
    push_s: float  # `mistpipe push NEW --wait`: chunking, upload and (with --wait) making the patches
    update_s: float  # `mist update --to NEW`, wall, start-up included
    waited: bool  # whether mistpipe has --wait (without it, patches may not be made yet)
    push: dict[str, Any]  # `mistpipe push --json` of the new build (with --wait: the patches made)
    update: dict[str, Any]  # `mist update --json`


def mistpipe_has_wait() -> bool:
    out = subprocess.run([str(ub.BIN / "mistpipe"), "push", "--help"], capture_output=True, text=True)
    return "--wait" in out.stdout


def measure_mist(pairs: list[Pair], say: Callable[[str], None]) -> dict[str, MistRun]:
    """One real mist-server; per pair, the first update after a push, as a friend meets it: the admin pushes
    old, a friend (fresh MIST_HOME, no daemon) installs it, the admin pushes the releases between (if any) and
    new (`--wait` for the patches), and the friend updates to new; the tree must be the new build."""
    ub.compile_bytecode()
    wait = ["--wait"] if mistpipe_has_wait() else []
    runs: dict[str, MistRun] = {}
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix="mist-delta-bench-"))
        stack.callback(shutil.rmtree, work, True)
        url = ub.start_mist_server(work / "server", ub.free_port(), stack)
        admin = ub.Person(work / "admin", ub.ADMIN_PASSWORD)
        admin.run("mistpipe", "login", url, "--user", "admin")
        admin.run("mistpipe", "user", "add", ub.FRIEND, env={"MIST_PASSWORD": ub.FRIEND_PASSWORD})
        for i, pair in enumerate(pairs):
            spec = next(s for s in PAIR_SPECS if s.name == pair.name)
            old_v, new_v = ub.version_label(spec.old.version), ub.version_label(spec.new.version)
            old = ub.stage_build(pair.old_dir, work / "builds" / f"{i}-old")
            new = ub.stage_build(pair.new_dir, work / "builds" / f"{i}-new")
            admin.run("mistpipe", "new-game", pair.name, "--title", spec.why[:80])
            admin.json("mistpipe", "push", pair.name, str(old.root), "--version", old_v, *wait)
            friend = ub.Person(work / "homes" / pair.name, ub.FRIEND_PASSWORD)
            friend.run("mist", "login", url, "--user", ub.FRIEND)
            target = work / "installs" / pair.name
            friend.json("mist", "install", pair.name, "--dir", str(target), "--version", old_v)
            for n, (release, tree) in enumerate(zip(spec.between, pair.between_dirs)):
                between = ub.stage_build(tree, work / "builds" / f"{i}-between-{n}")
                admin.json("mistpipe", "push", pair.name, str(between.root), "--version",
                           ub.version_label(release.version), *wait)
                shutil.rmtree(between.root)
            pushed, push_s = admin.timed_json("mistpipe", "push", pair.name, str(new.root), "--version", new_v, *wait)
            out, update_s = friend.timed_json("mist", "update", pair.name, "--to", new_v)
            ub.check_tree(new.root, target, f"mist update {pair.name} {old_v} -> {new_v}")
            runs[pair.name] = MistRun(int(out["bytes_downloaded"]), push_s, update_s, bool(wait), pushed, out)
            say(f"{pair.name}: mist update moved {int(out['bytes_downloaded']) / MB:.2f} MB")
            shutil.rmtree(target)
    return runs


# --- report ---------------------------------------------------------------------------------


COLUMNS = ("tar", "fixed", "fastcdc", "rdiff", "patch-from", "hdiff", "best")
TITLES = {
    "tar": "whole build tar.zst -19", "fixed": "fixed 1 MiB chunks", "fastcdc": "FastCDC chunks",
    "rdiff": "per-file rdiff", "patch-from": "per-file zstd --patch-from -19",
    "hdiff": f"per-file HDiffPatch ({HDIFF_SETTING})", "best": "best per file", "mist": "Mist",
}


def method_totals(diff: Diff, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Bytes, create and apply seconds per method for one pair (extra = rdiff signatures)."""
    out: dict[str, dict[str, float]] = {}
    for m in ("tar", "fixed", "fastcdc"):
        r = results[m]
        out[m] = {"size": r["size"], "create_s": r["create_s"], "apply_s": r["apply_s"], "extra": 0}
    for m in PER_FILE_METHODS:
        files = results[m]["files"].values()
        out[m] = {k: sum(f[k] for f in files) for k in ("size", "create_s", "apply_s", "extra")}
    best = best_per_file(diff, results)
    out["best"] = {"size": best.size, "create_s": best.create_s, "apply_s": best.apply_s, "extra": 0}
    return out


def report(pairs: list[Pair], diffs: dict[str, Diff], results: dict[tuple[str, str], dict[str, Any]], measured: int,
           mist: dict[str, MistRun] | None, command: str, seconds: float, loads: tuple[float, float]) -> str:
    by_pair = {p.name: {m: results[(p.name, m)] for m in METHODS} for p in pairs}
    totals = {p.name: method_totals(diffs[p.name], by_pair[p.name]) for p in pairs}
    columns = list(COLUMNS) + (["mist"] if mist is not None else [])
    for p in pairs:
        if mist is not None:
            run = mist[p.name]
            totals[p.name]["mist"] = {"size": run.bytes_downloaded, "create_s": run.push_s,
                                      "apply_s": run.update_s, "extra": 0}
    lines = [
        "# Update anchors: bytes a client holding the old build moves to get the new one",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{ub.tool_version(['zstd', '--version'])} (CLI), zstandard {zstandard.__version__}, "
        f"hdiffpatch {pa.hdiffpatch_version()}, python-rsync {pa.pyrsync.__version__} (librsync 2.3)",
        f"- run time: {seconds:.0f} s, measuring {measured} (pair, method) tasks (the others came from the cache "
        f"in {RESULT_CACHE}, written by an earlier run of the same measurement code; `--fresh` measures all: "
        f"~13 min here for the default pairs); 1-minute load {loads[0]:.2f} at the start, {loads[1]:.2f} at the end",
        "- builds: regular files only (symlinks skipped, as Mist refuses them); a file is *changed* if its path is in "
        "both builds with different bytes, *added* if its path is new; unchanged files cost nothing",
        "- **whole build**: `tar -cf - --sort=name . | zstd -19 -T2` of the new build; create/apply = wall seconds "
        "of that pipeline and of `zstd -d | tar -x` (2 threads)",
        f"- **fixed 1 MiB chunks** (Steam-like): every new file cut at 1 MiB boundaries; distinct chunks (SHA-256) "
        f"absent from the old build's fixed chunks, each zstd -{CHUNK_LEVEL}. **FastCDC chunks**: the same with "
        f"shared.chunking's FastCDC (64 KiB average): Mist with no patches. Both dedup across the build; create = "
        "cut + hash the new build + compress the missing chunks (the old build's list is in its manifest), apply = "
        "decompress them",
        f"- **per-file** methods: each changed file as a delta from the old file at the same path, each added file "
        f"whole as zstd -{WHOLE_LEVEL}. **rdiff** = librsync signature (rdiff 2.3 defaults) + delta, the delta zstd "
        "-19; the signatures a client would upload are in their own column, not in the total. **zstd --patch-from** "
        f"= the real CLI: `zstd -{WHOLE_LEVEL} --long=N --patch-from=OLD NEW -o PATCH`, N = bits(max size)+1; "
        "**HDiffPatch** = `hdiffpatch.diff(old, new, LzmaConfig(level=9, window=bits(diff size)), "
        "big_cache_match=True)` (made as the raw diff + `recompress`, the same bytes; the setting chosen in "
        "patch_algorithms.md)",
        "- **best per file**: each file by the smallest of its rdiff, patch-from, HDiffPatch delta or the FastCDC "
        "chunks it needs; the chunks of all files that chose chunks are counted once; its seconds are those of the "
        "chosen ways only",
        "- create/apply s = CPU seconds (children included for the zstd CLI), one core, files in memory, except "
        "whole build (wall)",
    ]
    if mist is not None:
        waited = all(r.waited for r in mist.values())
        lines.append(
            "- **Mist** = `bytes_downloaded` from `mist update GAME --to NEW --json` on a real `mist-server`, the "
            "first update after the push: the admin pushed old, a friend (no daemon) installed it, the admin pushed "
            "the releases between (esbuild-jump: 0.28.1) and new" + (" with `--wait` (patches made)" if waited else
                                                     " (mistpipe had no `--wait`: patches may not have been made)")
            + "; its create s = wall of the new build's push, apply s = wall of `mist update`; the tree was "
            "checked byte for byte")
    else:
        lines.append("- **Mist**: not measured in this run (add `--mist`)")
    lines += ["- MB = 10^6 bytes", "", "### Bytes moved (MB)", "",
              "| pair | kind | new build MB | changed / added / unchanged files | "
              + " | ".join(TITLES[c] for c in columns) + " | rdiff signatures (upload) |",
              "|---|---|---:|---:|" + "---:|" * len(columns) + "---:|"]
    for p in pairs:
        d, t = diffs[p.name], totals[p.name]
        smallest = min(t[c]["size"] for c in columns)
        cells = [(f"**{t[c]['size'] / MB:.2f}**" if t[c]["size"] == smallest else f"{t[c]['size'] / MB:.2f}")
                 for c in columns]
        lines.append(f"| {p.name} | {p.kind} | {d.new_bytes / MB:.1f} | {len(d.changed)} / {len(d.added)} / "
                     f"{d.unchanged} | " + " | ".join(cells) + f" | {t['rdiff']['extra'] / MB:.2f} |")
    lines += ["", "### Relative to the whole build as tar.zst -19", "",
              "| pair | " + " | ".join(TITLES[c] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    for p in pairs:
        t = totals[p.name]
        lines.append(f"| {p.name} | " + " | ".join(f"{t[c]['size'] / t['tar']['size']:.0%}" for c in columns) + " |")
    lines += ["", "### Seconds to create / apply", "",
              "| pair | " + " | ".join(TITLES[c] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    for p in pairs:
        t = totals[p.name]
        lines.append(f"| {p.name} | " + " | ".join(f"{t[c]['create_s']:.1f} / {t[c]['apply_s']:.1f}"
                                                  for c in columns) + " |")
    if mist is not None:
        lines += ["", "### Mist details", "",
                  "| pair | downloaded MB | ÷ per-file HDiffPatch | ÷ best per file | by source (MB) | files by source "
                  "| patches made at push | push s (new build) | update s |", "|---|---:|---:|---:|---|---|---|---:|---:|"]
        for p in pairs:
            run = mist[p.name]
            against = {c: run.bytes_downloaded / totals[p.name][c]["size"] for c in ("hdiff", "best")}
            by_source = ", ".join(f"{k} {v / MB:.2f}" for k, v in run.update.get("bytes_by_source", {}).items())
            files = ", ".join(f"{k} {v}" for k, v in run.update.get("files_by_source", {}).items())
            made = run.push.get("patches") or {}
            patches = (f"{made.get('made', 0)}: {made.get('patch_bytes', 0) / MB:.2f} MB instead of "
                       f"{made.get('chunk_bytes', 0) / MB:.2f} MB of chunks") if made else "-"
            lines.append(f"| {p.name} | {run.bytes_downloaded / MB:.2f} | {against['hdiff']:.3f} | {against['best']:.3f} "
                         f"| {by_source} | {files} | {patches} "
                         f"| {run.push_s:.1f} | {run.update_s:.1f} |")
    lines += ["", "### Best per file: what each file chose", "", "| pair | " + " | ".join(
        ("chunks",) + PER_FILE_METHODS) + " |", "|---|" + "---:|" * (len(PER_FILE_METHODS) + 1)]
    for p in pairs:
        chosen = best_per_file(diffs[p.name], by_pair[p.name]).chosen
        lines.append(f"| {p.name} | " + " | ".join(str(chosen.get(m, 0)) for m in ("chunks",) + PER_FILE_METHODS) + " |")
    return "\n".join(lines) + "\n"


def parse_pairs(value: str | None) -> list[str] | None:
    if value == "all":
        return None
    return list(DEFAULT_PAIRS) if value is None else [p.strip() for p in value.split(",") if p.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help=f"comma-separated pair names, or 'all' (default: {','.join(DEFAULT_PAIRS)})")
    parser.add_argument("--mist", action="store_true", help="also measure Mist itself through mist-server, "
                        "`mistpipe push --wait` and `mist update --json`")
    parser.add_argument("--workers", type=int, default=2, help="tasks at a time (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results and measure again")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="write the report here (default: %(default)s)")
    args = parser.parse_args()

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    command = pa.the_command(__file__)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    with ub.terminate_as_exception():
        pairs = corpus_pairs(parse_pairs(args.pairs))
        diffs = {p.name: build_diff(p) for p in pairs}
        results, measured = run_all(pairs, diffs, args.fresh, args.workers, say)
        mist = measure_mist(pairs, say) if args.mist else None
    text = report(pairs, diffs, results, measured, mist, command, time.perf_counter() - started,
                  (load_start, os.getloadavg()[0]))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
