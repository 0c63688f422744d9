"""Measure binary patch algorithms on the files that change between real releases.

Mist's patch objects (a delta from one file content to another) need one
algorithm and one compression setting. This script measures the candidates on
every file that changed between the old and new build of each pair in
bench/corpus.py: patch bytes, creation CPU time, apply time and peak memory,
next to the chunk-only baseline (the new file's FastCDC chunks the old file
lacks, zstd -9 each), which is what Mist moves without patches.

Candidates: HDiffPatch (uncompressed, then zstd; or its own zstd/lzma/lzma2
streams), zstd with the old file as a dictionary (python-zstandard's raw-content
dictionary, and the `--patch-from` way: the old file as a prefix with
long-distance matching), and librsync's rdiff (what Mist uses for local files
that match no known content).

Each (pair, method) runs in a fresh process, two at a time (this machine has 2
cores), so ru_maxrss is that method's peak on that pair and a crash in one
library cannot take the run down. Speeds are uncompressed new-file MB per CPU
second of the worker (every library here runs single-threaded), so other load
on the machine does not skew them. Results are cached per (pair, method) in
~/.cache/mist-bench/patch_algorithms; --fresh measures again.

Usage: .venv/bin/python bench/patch_algorithms.py [--pairs a,b] [--methods m,n] [--fresh] [--out FILE]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import io
import json
import math
import multiprocessing
import os
import platform
import resource
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import hdiffpatch  # noqa: E402
import pyrsync  # noqa: E402
import zstandard  # noqa: E402

from corpus import CACHE_DIR, Pair, corpus_pairs  # noqa: E402
from update_bench import same_bytes  # noqa: E402
from shared import patch  # noqa: E402
from shared.chunking import DEFAULT_PARAMS, chunk_bytes  # noqa: E402

MIN_FILE = 4 * 1024
MAX_FILE = 300 * 1000 * 1000  # bigger files are skipped (and listed) to keep the run under ~15 minutes
CHUNK_LEVEL = 9  # shared/compression.py's level for chunks
RESULT_CACHE = CACHE_DIR / "patch_algorithms"
# Bump a method's number when its measurement changes, so its old cached results are not reused.
CACHE_VERSIONS = {"chunks": 1, "rdiff": 1, "zstd-fast": 2, "zstd-19": 2, "hdiff": 1, "hdiff-plain": 1}
DEFAULT_OUT = REPO / "bench" / "results" / "patch_algorithms.md"
MB = 1_000_000
T = TypeVar("T")


# --- the files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangedFile:
    """A path present in both builds with different content: what a patch object would cover."""

    rel: str
    old: str
    new: str
    old_size: int
    new_size: int


def regular_files(root: Path) -> dict[str, Path]:
    """Relative path -> file; symlinks are skipped because Mist manifests reject them."""
    out: dict[str, Path] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(root).as_posix()] = p
    return out


def changed_files(pair: Pair) -> tuple[list[ChangedFile], list[str]]:
    """The pair's changed files (both sides >= 4 KiB), largest first, and the ones skipped as too big."""
    old, new = regular_files(pair.old_dir), regular_files(pair.new_dir)
    files: list[ChangedFile] = []
    skipped: list[str] = []
    for rel in sorted(set(old) & set(new)):
        o, n = old[rel], new[rel]
        os_, ns = o.stat().st_size, n.stat().st_size
        if min(os_, ns) < MIN_FILE or same_bytes(o, n):
            continue
        if max(os_, ns) > MAX_FILE:
            skipped.append(f"{rel} ({max(os_, ns) / MB:.0f} MB)")
            continue
        files.append(ChangedFile(rel, str(o), str(n), os_, ns))
    files.sort(key=lambda f: -f.new_size)
    return files, skipped


# --- timing helpers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One algorithm + compression setting measured on one file."""

    name: str
    size: int
    create_s: float  # CPU seconds to make the patch from the two files in memory
    apply_s: float  # CPU seconds to rebuild the new file from the old file and the patch


def cpu(fn: Callable[[], T]) -> tuple[T, float]:
    """Run fn and return its result with the CPU seconds it took (the libraries run single-threaded)."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def check(what: str, got: bytes, want: bytes) -> None:
    """Every patch must rebuild the new file exactly, or its size means nothing."""
    if got != want:
        raise RuntimeError(f"{what} did not rebuild the new file ({len(got)} bytes, expected {len(want)})")


def zstd_compress(data: bytes | memoryview, level: int) -> bytes:
    """How Mist's store compresses an object: one zstd frame with its content size."""
    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)


def zstd_decompress(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(data)


def window_log(*sizes: int) -> int:
    """A window reaching from the end of the new file back over all of the old one."""
    return max(zstandard.WINDOWLOG_MIN, min(31, (max(sizes) + 1).bit_length()))


# --- (d) chunks: what Mist moves without patches --------------------------------------------


def measure_chunks(old: bytes, new: bytes) -> Iterator[Variant]:
    """The new file's distinct FastCDC chunks that the old file lacks, each zstd -9. Creation =
    chunking the new file and compressing those chunks (the old file's chunk list is in its manifest);
    apply = decompressing them and assembling the file from them and the old file's chunks."""
    old_chunks = chunk_bytes(old, DEFAULT_PARAMS)
    old_at: dict[str, tuple[int, int]] = {}
    offset = 0
    for ref in old_chunks.chunks:
        old_at.setdefault(ref.sha256, (offset, ref.size))
        offset += ref.size

    def create() -> dict[str, bytes]:
        shipped: dict[str, bytes] = {}
        view, offset = memoryview(new), 0
        for ref in chunk_bytes(new, DEFAULT_PARAMS).chunks:
            if ref.sha256 not in old_at and ref.sha256 not in shipped:
                shipped[ref.sha256] = zstd_compress(view[offset:offset + ref.size], CHUNK_LEVEL)
            offset += ref.size
        return shipped

    shipped, create_s = cpu(create)
    assert isinstance(shipped, dict)
    new_refs = chunk_bytes(new, DEFAULT_PARAMS).chunks

    def apply() -> bytes:
        fetched = {h: zstd_decompress(z) for h, z in shipped.items()}
        parts = []
        for ref in new_refs:
            if ref.sha256 in fetched:
                parts.append(fetched[ref.sha256])
            else:
                o, n = old_at[ref.sha256]
                parts.append(old[o:o + n])
        return b"".join(parts)

    rebuilt, apply_s = cpu(apply)
    check("chunks", rebuilt, new)
    yield Variant("chunks zstd-9", sum(len(z) for z in shipped.values()), create_s, apply_s)


# --- (c) rdiff ------------------------------------------------------------------------------


def rdiff_signature(old: bytes) -> bytes:
    """librsync's signature with rdiff 2.3's defaults (BLAKE2, block length and strength from the size)."""
    magic, block_len, strong_len = pyrsync.get_signature_args(len(old))
    out = io.BytesIO()
    pyrsync.signature(io.BytesIO(old), out, strong_len, magic, block_len)
    return out.getvalue()


def rdiff_delta(signature: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    pyrsync.delta(io.BytesIO(new), io.BytesIO(signature), out)
    return out.getvalue()


def rdiff_patch(old: bytes, delta: bytes) -> bytes:
    out = io.BytesIO()
    pyrsync.patch(io.BytesIO(old), io.BytesIO(delta), out)
    return out.getvalue()


def measure_rdiff(old: bytes, new: bytes) -> Iterator[Variant]:
    """Signature of the old file, delta of the new one against it; creation counts both. The
    signature (uploaded by the client in Mist's use) is reported apart, as the 'rdiff signature' row."""
    signature, sig_s = cpu(lambda: rdiff_signature(old))
    delta, delta_s = cpu(lambda: rdiff_delta(signature, new))
    packed, pack_s = cpu(lambda: zstd_compress(delta, 19))
    rebuilt, patch_s = cpu(lambda: rdiff_patch(old, delta))
    check("rdiff", rebuilt, new)
    unpacked, unpack_s = cpu(lambda: zstd_decompress(packed))
    check("rdiff zstd", unpacked, delta)
    yield Variant("rdiff", len(delta), sig_s + delta_s, patch_s)
    yield Variant("rdiff + zstd-19", len(packed), sig_s + delta_s + pack_s, unpack_s + patch_s)
    yield Variant("rdiff signature", len(signature), sig_s, 0.0)


# --- (b) zstd with the old file as dictionary -----------------------------------------------


def dict_delta(old: bytes, new: bytes, level: int, index_all: bool) -> tuple[bytes, int]:
    """python-zstandard's raw-content dictionary. libzstd indexes only the last
    2^max(hashLog+3, chainLog+1) bytes of a dictionary (1 MiB at level 3), and long-distance
    matching never sees a dictionary loaded this way (it goes through a CDict), so index_all
    raises hashLog until the whole old file is indexed. Returns the frame and its window log."""
    wlog = window_log(len(old), len(new))
    params = zstandard.ZstdCompressionParameters.from_level(level, source_size=len(new), window_log=wlog,
                                                            enable_ldm=True)
    if index_all:
        hash_log = max(params.hash_log, min(30, (len(old) + 1).bit_length() - 3))
        params = zstandard.ZstdCompressionParameters.from_level(level, source_size=len(new), window_log=wlog,
                                                                enable_ldm=True, hash_log=hash_log)
    dictionary = zstandard.ZstdCompressionDict(old, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params).compress(new), wlog


def dict_undelta(old: bytes, frame: bytes, wlog: int) -> bytes:
    dictionary = zstandard.ZstdCompressionDict(old, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    return zstandard.ZstdDecompressor(dict_data=dictionary, max_window_size=1 << wlog).decompress(frame)


def sized_tables(level: int, old_size: int, new_size: int) -> tuple[int, int]:
    """hashLog and chainLog big enough that libzstd indexes the whole old file: it loads only the last
    2^max(hashLog+3, chainLog+1) bytes of a prefix or dictionary into its match tables (1 MiB at
    level 3, 32 MiB at 19); long-distance matching still sees all of it. Binary-tree strategies
    (levels 13+) also need a tree (chainLog) that reaches back over the whole old file."""
    base = zstandard.ZstdCompressionParameters.from_level(level, source_size=new_size)
    bits = (old_size + 1).bit_length()
    hash_log = max(base.hash_log, min(30, bits - 3))
    chain_log = max(base.chain_log, min(30, bits - 1)) if base.strategy >= zstandard.STRATEGY_BTLAZY2 else base.chain_log
    return hash_log, chain_log


def prefix_delta(old: bytes, new: bytes, level: int, sized: bool = False) -> bytes:
    """`zstd --patch-from=old --long`, exactly as Mist makes its quick patches (shared.patch.zstd_delta);
    `sized` raises the match tables to cover the whole old file (see sized_tables)."""
    return patch.zstd_delta(old, new, level, sized_tables(level, len(old), len(new)) if sized else None)


def measure_zstd_fast(old: bytes, new: bytes) -> Iterator[Variant]:
    """The quick deltas Mist could make while a client waits: level 3, four ways."""
    for name, index_all in (("zstd-dict -3", False), ("zstd-dict -3 hash-sized", True)):
        (frame, wlog), create_s = cpu(lambda: dict_delta(old, new, 3, index_all))
        rebuilt, apply_s = cpu(lambda: dict_undelta(old, frame, wlog))
        check(name, rebuilt, new)
        yield Variant(name, len(frame), create_s, apply_s)
    yield from measure_prefix(old, new, 3, sized=False)
    yield from measure_prefix(old, new, 3, sized=True)


def measure_prefix(old: bytes, new: bytes, level: int, sized: bool) -> Iterator[Variant]:
    name = f"zstd-prefix -{level}" + (" hash-sized" if sized else "")
    frame, create_s = cpu(lambda: prefix_delta(old, new, level, sized))
    rebuilt, apply_s = cpu(lambda: patch.zstd_undelta(old, frame, len(new)))
    check(name, rebuilt, new)
    yield Variant(name, len(frame), create_s, apply_s)


def measure_zstd_19(old: bytes, new: bytes) -> Iterator[Variant]:
    """`--patch-from -19` with tables sized to the old file (unsized, libzstd 1.5.7 at -19 indexes only the
    last 32 MiB of the old file): the slow, small zstd delta (~1 MB/s here), its own task so it runs in parallel."""
    yield from measure_prefix(old, new, 19, sized=True)


# --- (a) HDiffPatch -------------------------------------------------------------------------


def hdiff_raw(old: bytes, new: bytes, big_cache: bool = True) -> bytes:
    return hdiffpatch.diff(old, new, hdiffpatch.COMPRESSION_NONE, validate=False, big_cache_match=big_cache)


def hdiff_configs(raw_size: int) -> dict[str, hdiffpatch.BaseConfig]:
    """hdiffpatch's own compressors at their best level, windows sized to the diff (within their limits)."""
    bits = (raw_size + 1).bit_length()
    return {
        "hdiff/zstd-19": hdiffpatch.ZStdConfig(level=19, window=max(10, min(27, bits))),
        "hdiff/lzma-9": hdiffpatch.LzmaConfig(level=9, window=max(12, min(30, bits))),
        "hdiff/lzma2-9": hdiffpatch.Lzma2Config(level=9, window=max(12, min(30, bits))),
    }


def measure_hdiff(old: bytes, new: bytes) -> Iterator[Variant]:
    """One uncompressed diff, then each compression of it. hdiffpatch.diff(old, new, config) is
    the uncompressed diff plus hdiffpatch.recompress(raw, config) (byte-identical: spot-checked for
    zstd-19 and lzma-9), so creation = diff + recompress; apply decompresses inside hdiffpatch.apply."""
    raw, diff_s = cpu(lambda: hdiff_raw(old, new))
    rebuilt, apply_s = cpu(lambda: hdiffpatch.apply(old, raw))
    check("hdiff", rebuilt, new)
    yield Variant("hdiff (none)", len(raw), diff_s, apply_s)
    for level in (9, 19):
        packed, pack_s = cpu(lambda: zstd_compress(raw, level))
        rebuilt, apply_s = cpu(lambda: hdiffpatch.apply(old, zstd_decompress(packed)))
        check(f"hdiff + zstd-{level}", rebuilt, new)
        yield Variant(f"hdiff + zstd-{level}", len(packed), diff_s + pack_s, apply_s)
    for name, config in hdiff_configs(len(raw)).items():
        packed, pack_s = cpu(lambda: hdiffpatch.recompress(raw, config))
        rebuilt, apply_s = cpu(lambda: hdiffpatch.apply(old, packed))
        check(name, rebuilt, new)
        yield Variant(name, len(packed), diff_s + pack_s, apply_s)


def measure_hdiff_plain(old: bytes, new: bytes) -> Iterator[Variant]:
    """The same diff without big_cache_match (byte-identical output), only to see what the cache buys."""
    raw, diff_s = cpu(lambda: hdiff_raw(old, new, big_cache=False))
    yield Variant("hdiff (none), no big cache", len(raw), diff_s, 0.0)


# Method -> (measure function, rough CPU seconds per new MB, used to start the longest tasks first).
METHODS: dict[str, tuple[Callable[[bytes, bytes], Iterator[Variant]], float]] = {
    "chunks": (measure_chunks, 0.03),
    "rdiff": (measure_rdiff, 0.5),
    "zstd-fast": (measure_zstd_fast, 0.1),
    "zstd-19": (measure_zstd_19, 1.0),
    "hdiff": (measure_hdiff, 0.5),
    "hdiff-plain": (measure_hdiff_plain, 0.3),
}
DEFAULT_METHODS = ("chunks", "rdiff", "zstd-fast", "zstd-19", "hdiff")


# --- one task: one method over one pair's changed files, in its own process ------------------


def run_task(method: str, files: list[ChangedFile]) -> dict[str, Any]:
    """Measure one method on every file of one pair; the process is fresh, so ru_maxrss is this task's peak."""
    measure, _cost = METHODS[method]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = []
    for f in files:
        old, new = Path(f.old).read_bytes(), Path(f.new).read_bytes()
        rows.append({"rel": f.rel, "variants": [asdict(v) for v in measure(old, new)]})
        del old, new
    return {"method": method, "files": rows, "base_rss_kb": base_rss,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def cache_path(pair: Pair, method: str) -> Path:
    return RESULT_CACHE / f"{pair.name}--{method}.json"


def cache_key(pair: Pair, method: str, files: list[ChangedFile]) -> dict[str, Any]:
    """What a cached result depends on, as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps({
        "version": CACHE_VERSIONS[method], "method": method,
        "libs": [hdiffpatch_version(), zstandard.__version__, zstandard.ZSTD_VERSION, pyrsync.__version__],
        "files": [[f.old, f.new, f.old_size, f.new_size] for f in files],
    }))


def hdiffpatch_version() -> str:
    from importlib.metadata import version
    return version("hdiffpatch")


def run_all(pairs: list[Pair], files: dict[str, list[ChangedFile]], methods: list[str], fresh: bool,
            workers: int, say: Callable[[str], None]) -> tuple[dict[tuple[str, str], dict[str, Any]], int]:
    """Every (pair, method) task not cached, longest first, `workers` at a time, each in a fresh spawned
    process; returns the results and how many tasks were measured (not cached)."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    todo = []
    for pair in pairs:
        for method in methods:
            key = cache_key(pair, method, files[pair.name])
            path = cache_path(pair, method)
            if not fresh and path.is_file():
                saved = json.loads(path.read_text())
                if saved.get("key") == key:
                    results[(pair.name, method)] = saved["result"]
                    continue
            cost = METHODS[method][1] * sum(f.new_size for f in files[pair.name]) / MB
            todo.append((cost, pair, method, key))
    todo.sort(key=lambda t: -t[0])
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_task, method, files[pair.name]): (pair, method, key)
                   for _cost, pair, method, key in todo}
        for future in concurrent.futures.as_completed(futures):
            pair, method, key = futures[future]
            result = future.result()
            results[(pair.name, method)] = result
            path = cache_path(pair, method)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"key": key, "result": result}))
            say(f"[{time.perf_counter() - started:5.0f}s] {pair.name} {method} done")
    return results, len(todo)


# --- report ---------------------------------------------------------------------------------


@dataclass
class Total:
    """One variant summed over some files."""

    size: int = 0
    create_s: float = 0.0
    apply_s: float = 0.0
    new_bytes: int = 0
    peak_rss_kb: int = 0

    def add(self, v: dict[str, float], new_size: int) -> None:
        self.size += int(v["size"])
        self.create_s += v["create_s"]
        self.apply_s += v["apply_s"]
        self.new_bytes += new_size

    def create_mbps(self) -> float:
        return self.new_bytes / MB / self.create_s if self.create_s else math.inf

    def apply_mbps(self) -> float:
        return self.new_bytes / MB / self.apply_s if self.apply_s else math.inf


def variant_order(results: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for method in METHODS:
        for (_pair, m), result in results.items():
            if m != method:
                continue
            for row in result["files"]:
                for v in row["variants"]:
                    if v["name"] not in seen:
                        seen.append(v["name"])
    return seen


def pair_totals(pair: str, files: list[ChangedFile], results: dict[tuple[str, str], dict[str, Any]]
                ) -> dict[str, Total]:
    sizes = {f.rel: f.new_size for f in files}
    totals: dict[str, Total] = {}
    for (p, _method), result in results.items():
        if p != pair:
            continue
        for row in result["files"]:
            for v in row["variants"]:
                t = totals.setdefault(v["name"], Total())
                t.add(v, sizes[row["rel"]])
                t.peak_rss_kb = max(t.peak_rss_kb, int(result["peak_rss_kb"]))
    return totals


def fmt_mb(n: float) -> str:
    return f"{n / MB:.3f}"


def fmt_speed(x: float) -> str:
    return "" if math.isinf(x) else (f"{x:.0f}" if x >= 10 else f"{x:.1f}")


PATCH_VARIANTS_EXCLUDED_FROM_BEST = ("rdiff signature", "hdiff (none)", "rdiff", "hdiff (none), no big cache")


def summary_table(pairs: list[Pair], totals: dict[str, dict[str, Total]], order: list[str]) -> list[str]:
    """One row per variant: bytes per pair and overall, how far from the smallest shippable patch
    per pair (geometric mean, so one big pair cannot decide), speeds, and peak memory."""
    names = [p.name for p in pairs]
    best = {p: min(t.size for v, t in totals[p].items() if v not in PATCH_VARIANTS_EXCLUDED_FROM_BEST)
            for p in names}
    lines = [
        "| variant | total MB | geo-mean vs best | create MB/s | apply MB/s | peak RSS MB | "
        + " | ".join(f"{p} MB" for p in names) + " |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(names),
    ]
    for v in order:
        per = [totals[p].get(v) for p in names]
        if any(t is None for t in per):
            continue
        whole = Total()
        for t in per:
            assert t is not None
            whole.size += t.size
            whole.create_s += t.create_s
            whole.apply_s += t.apply_s
            whole.new_bytes += t.new_bytes
        geo = math.exp(sum(math.log(max(t.size, 1) / best[p]) for t, p in zip(per, names) if t) / len(names))
        peak = max(t.peak_rss_kb for t in per if t) / 1024
        lines.append(
            f"| {v} | {whole.size / MB:.2f} | {geo:.2f} | {fmt_speed(whole.create_mbps())} "
            f"| {fmt_speed(whole.apply_mbps())} | {peak:.0f} | "
            + " | ".join(fmt_mb(t.size) for t in per if t) + " |")
    return lines


def pair_table(pair: Pair, files: list[ChangedFile], skipped: list[str], totals: dict[str, Total],
               order: list[str]) -> list[str]:
    new_bytes = sum(f.new_size for f in files)
    lines = [
        f"### {pair.name} ({pair.kind})",
        "",
        f"{len(files)} changed files, {new_bytes / MB:.1f} MB new"
        + (f"; skipped (over {MAX_FILE // MB} MB): {', '.join(skipped)}" if skipped else ""),
        "",
        "| variant | MB | vs chunks | create s (CPU) | create MB/s | apply s | apply MB/s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    chunks = totals.get("chunks zstd-9")
    for v in order:
        t = totals.get(v)
        if t is None:
            continue
        ratio = f"{t.size / chunks.size:.3f}" if chunks and chunks.size else ""
        lines.append(
            f"| {v} | {fmt_mb(t.size)} | {ratio} | {t.create_s:.2f} | {fmt_speed(t.create_mbps())} "
            f"| {t.apply_s:.2f} | {fmt_speed(t.apply_mbps())} | {t.peak_rss_kb / 1024:.0f} |")
    return lines + [""]


BIG_FILE_VARIANTS = ("chunks zstd-9", "rdiff + zstd-19", "zstd-dict -3", "zstd-dict -3 hash-sized", "zstd-prefix -3",
                     "zstd-prefix -3 hash-sized", "zstd-prefix -19 hash-sized", "hdiff + zstd-19", "hdiff/lzma-9")


def big_files_table(pairs: list[Pair], files: dict[str, list[ChangedFile]],
                    results: dict[tuple[str, str], dict[str, Any]], count: int) -> list[str]:
    """The largest changed files: patch sizes in KB, then creation speed of the two candidates."""
    per_file: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for (pair, _method), result in results.items():
        for row in result["files"]:
            for v in row["variants"]:
                per_file.setdefault((pair, row["rel"]), {})[v["name"]] = v
    everything = [(f, p.name) for p in pairs for f in files[p.name]]
    everything.sort(key=lambda x: -x[0].new_size)
    shown = [v for v in BIG_FILE_VARIANTS if any(v in d for d in per_file.values())]
    lines = [
        f"### The {count} largest changed files (patch KB; create MB/s in CPU time)",
        "",
        "| pair | file | old MB | new MB | " + " | ".join(f"{v} KB" for v in shown)
        + " | zstd-prefix -3 MB/s | hdiff + zstd-19 MB/s | zstd-prefix -3 / hdiff + zstd-19 |",
        "|---|---|---:|---:|" + "---:|" * len(shown) + "---:|---:|---:|",
    ]
    for f, pair in everything[:count]:
        d = per_file.get((pair, f.rel), {})
        cells = [f"{d[v]['size'] / 1000:.0f}" if v in d else "" for v in shown]
        speed = [fmt_speed(f.new_size / MB / d[v]["create_s"]) if v in d and d[v]["create_s"] else ""
                 for v in ("zstd-prefix -3", "hdiff + zstd-19")]
        ratio = (f"{d['zstd-prefix -3']['size'] / d['hdiff + zstd-19']['size']:.1f}"
                 if "zstd-prefix -3" in d and "hdiff + zstd-19" in d else "")
        name = f.rel if len(f.rel) <= 48 else "…" + f.rel[-47:]
        lines.append(f"| {pair} | {name} | {f.old_size / MB:.1f} | {f.new_size / MB:.1f} | "
                     + " | ".join(cells) + " | " + " | ".join(speed) + f" | {ratio} |")
    return lines + [""]


def the_command(script: str = __file__) -> str:
    """The command as typed from the current directory, for the report."""
    exe = os.path.relpath(sys.executable, Path.cwd())
    return shlex.join([exe, os.path.relpath(script, Path.cwd()), *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help="comma-separated pair names (default: all)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, from {', '.join(METHODS)} (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="tasks at a time (default: %(default)s)")
    parser.add_argument("--big-files", type=int, default=15, help="rows in the largest-files table")
    parser.add_argument("--fresh", action="store_true", help="ignore cached results and measure again")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="write the report here (default: %(default)s)")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    pairs = corpus_pairs(args.pairs.split(",") if args.pairs else None)
    files: dict[str, list[ChangedFile]] = {}
    skipped: dict[str, list[str]] = {}
    for pair in pairs:
        files[pair.name], skipped[pair.name] = changed_files(pair)
    results, measured = run_all(pairs, files, methods, args.fresh, args.workers, say)
    order = variant_order(results)
    totals = {p.name: pair_totals(p.name, files[p.name], results) for p in pairs}

    header = [
        "# Binary patch algorithms on real release pairs",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{the_command()}`",
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"hdiffpatch {hdiffpatch_version()}, zstandard {zstandard.__version__} "
        f"(libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}), python-rsync {pyrsync.__version__} (librsync 2.3)",
        f"- run time: {time.perf_counter() - started:.0f} s measuring {measured} of {len(results)} (pair, method) "
        f"tasks, 1-minute load {load_start:.2f} at the start and {os.getloadavg()[0]:.2f} at the end; "
        f"results are cached per (pair, method) in {RESULT_CACHE}, so unmeasured tasks come from an earlier "
        "run of the same measurement code (`--fresh` measures all: ~30 CPU-minutes, ~15 min on 2 idle cores)",
        f"- files: every path in both builds whose content differs, both sides >= {MIN_FILE // 1024} KiB, "
        f"none over {MAX_FILE // MB} MB (skipped ones are listed per pair); added files are not patches and are "
        "left out (see delta_bench.md)",
        "- every patch was applied and compared with the new file byte for byte",
        "- create/apply MB/s = new-file MB / CPU seconds of the worker process (`time.process_time`, every "
        "library single-threaded), files already in memory; create includes everything from the two files to the "
        "shipped bytes; apply includes decompression. peak RSS = ru_maxrss of a fresh process that measured only "
        "that method on that pair (the interpreter and both files in memory included: ~"
        "{base} MB before any file was read)",
        "- variants: **chunks zstd-9** = the new file's distinct FastCDC chunks (shared.chunking defaults) absent "
        "from the old file, each zstd -9 (what Mist moves without patches); **rdiff** = librsync delta against the "
        "old file's signature (rdiff 2.3 defaults: BLAKE2, block length from the size), raw and zstd -19; "
        "**rdiff signature** = its size (the client uploads it), not a patch; **zstd-dict -3** = python-zstandard "
        "`ZstdCompressionDict(old, DICT_TYPE_RAWCONTENT)` with `from_level(3, window_log=bits(max size)+1, "
        "enable_ldm=True)`; **hash-sized** = the same with hash_log raised to bits(old)-3 (libzstd indexes only "
        "the last 2^max(hashLog+3, chainLog+1) bytes of a dictionary: 1 MiB at level 3, 32 MiB at 19; LDM never "
        "sees such a dictionary); **zstd-prefix -L** = `zstd --patch-from` done in-process: the old file as "
        "`ZSTD_CCtx_refPrefix` (python-zstandard's cffi backend), windowLog = bits(max size)+1, LDM on; its "
        "**hash-sized** form also raises hashLog to bits(old)-3 (and, at -19, chainLog to bits(old)-1) so the "
        "whole old file is indexed, not only its last 1 MiB (-3) or 32 MiB (-19): without that, -19 did worse "
        "than -3 on the 129 MB modules file in an earlier run; "
        "**hdiff (none)** = `hdiffpatch.diff(old, new, COMPRESSION_NONE, validate=False, big_cache_match=True)`; "
        "**hdiff + zstd-L** = that diff compressed as one zstd -L frame (how Mist's store would hold it); "
        "**hdiff/X** = hdiffpatch's own compressor (`recompress` of the raw diff: the same bytes as "
        "`diff(..., config)`), window = bits(diff size) within the library's limits",
        "- geo-mean vs best: per pair, variant bytes / the smallest shippable variant's bytes (raw diffs and "
        "signatures excluded), geometric mean over pairs; MB = 10^6 bytes",
        "",
    ]
    base = max(int(r["base_rss_kb"]) for r in results.values()) / 1024
    header = [line.replace("{base}", f"{base:.0f}") for line in header]
    body = ["### Summary over all pairs (sums over each pair's changed files)", ""]
    body += summary_table(pairs, totals, order) + [""]
    body += big_files_table(pairs, files, results, args.big_files)
    for pair in pairs:
        body += pair_table(pair, files[pair.name], skipped[pair.name], totals[pair.name], order)
    report = "\n".join(header + body)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)


if __name__ == "__main__":
    main()
