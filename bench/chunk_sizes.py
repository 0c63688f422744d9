"""Measure which FastCDC average chunk size Mist should use.

Smaller chunks let an update skip more unchanged bytes, but every chunk costs a
manifest entry (which each client downloads on every update), a hash, a store
lookup, and compresses a little worse because zstd sees less context. Larger
chunks are the reverse. This script measures both sides on the real release
pairs from bench/corpus.py, next to the no-chunking baseline of shipping the
whole new build as one .tar.zst.

Usage: python bench/chunk_sizes.py [--pairs a,b] [--out bench/results/chunk_sizes.md]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyfastcdc
import zstandard
from pyfastcdc import FastCDC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CACHE_DIR, Pair, corpus_pairs  # noqa: E402

AVG_SIZES_KIB = (16, 32, 64, 128, 256)
CHUNK_ZSTD_LEVEL = 3
BASELINE_ZSTD_LEVEL = 19
# Rough canonical-JSON cost: a chunk entry is a 64-hex SHA-256 plus a size;
# a file entry is its path, size, mode and whole-file SHA-256.
MANIFEST_BYTES_PER_CHUNK = 75
MANIFEST_BYTES_PER_FILE = 150
MB = 1_000_000


def build_files(root: Path) -> list[Path]:
    """Regular files of a build in a stable order; symlinks are skipped
    because Mist manifests reject them."""
    out: list[Path] = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names):
            p = Path(dirpath, n)
            if p.is_file() and not p.is_symlink():
                out.append(p)
    return out


@dataclass
class SizeResult:
    """Everything measured for one pair at one average chunk size."""

    avg_kib: int
    old_hashes: set[bytes] = field(default_factory=set)
    new_seen: set[bytes] = field(default_factory=set)
    new_chunks: int = 0
    new_bytes: int = 0
    new_files: int = 0
    fetch_chunks: int = 0
    download_bytes: int = 0
    full_bytes: int = 0
    cut_bytes: int = 0
    cut_seconds: float = 0.0
    hash_seconds: float = 0.0

    @property
    def manifest_bytes(self) -> int:
        return self.new_chunks * MANIFEST_BYTES_PER_CHUNK + self.new_files * MANIFEST_BYTES_PER_FILE

    @property
    def update_bytes(self) -> int:
        """What an update really costs: the missing chunks plus the new manifest."""
        return self.download_bytes + self.manifest_bytes


def chunk_file(cdc: FastCDC, data: bytes, res: SizeResult) -> list[tuple[bytes, memoryview]]:
    """Cut and hash one file, timing the two steps separately since only the
    cut depends strongly on the chunk size."""
    view = memoryview(data)
    t0 = time.perf_counter()
    cuts = [(c.offset, c.length) for c in cdc.cut_buf(data)]
    t1 = time.perf_counter()
    chunks = [(hashlib.sha256(view[o:o + n]).digest(), view[o:o + n]) for o, n in cuts]
    t2 = time.perf_counter()
    res.cut_bytes += len(data)
    res.cut_seconds += t1 - t0
    res.hash_seconds += t2 - t1
    return chunks


def measure_pair(pair: Pair) -> list[SizeResult]:
    """Chunk old then new at every size, reading each file once for all sizes."""
    results = [SizeResult(a) for a in AVG_SIZES_KIB]
    cdcs = [FastCDC(a * 1024, min_size=a * 256, max_size=a * 4096) for a in AVG_SIZES_KIB]
    zc = zstandard.ZstdCompressor(level=CHUNK_ZSTD_LEVEL)
    for path in build_files(pair.old_dir):
        data = path.read_bytes()
        for cdc, res in zip(cdcs, results):
            res.old_hashes.update(h for h, _ in chunk_file(cdc, data, res))
    for path in build_files(pair.new_dir):
        data = path.read_bytes()
        for cdc, res in zip(cdcs, results):
            res.new_files += 1
            res.new_bytes += len(data)
            for digest, view in chunk_file(cdc, data, res):
                res.new_chunks += 1
                if digest in res.new_seen:
                    continue
                res.new_seen.add(digest)
                packed = len(zc.compress(view))
                res.full_bytes += packed
                if digest not in res.old_hashes:
                    res.fetch_chunks += 1
                    res.download_bytes += packed
    return results


def zstd_version() -> str:
    """The zstd CLI's version, e.g. "zstd v1.5.4": part of the baseline cache key."""
    out = subprocess.run(["zstd", "-V"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v\d+\.\d+\.\d+", out)
    return f"zstd {found.group(0) if found else out.strip()}"


def baseline_bytes(new_dir: Path) -> int:
    """Size of `tar -C new . | zstd -19`: what shipping the whole build costs.
    zstd -19 runs at a few MB/s here, so results are cached per build."""
    cache = CACHE_DIR / "baseline" / (new_dir.relative_to(CACHE_DIR).as_posix().replace("/", "__") + ".json")
    key = {"level": BASELINE_ZSTD_LEVEL, "zstd": zstd_version()}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["key"] == key:
            return int(saved["bytes"])
    tar = subprocess.Popen(["tar", "-C", str(new_dir), "-cf", "-", "."], stdout=subprocess.PIPE)
    zst = subprocess.Popen(["zstd", f"-{BASELINE_ZSTD_LEVEL}", "-T2", "-q", "-c"],
                           stdin=tar.stdout, stdout=subprocess.PIPE)
    assert tar.stdout is not None and zst.stdout is not None
    tar.stdout.close()
    total = 0
    while block := zst.stdout.read(1 << 20):
        total += len(block)
    if tar.wait() != 0 or zst.wait() != 0:
        raise RuntimeError(f"tar | zstd failed for {new_dir}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "bytes": total}))
    return total


def pair_table(pair: Pair, results: list[SizeResult], baseline: int) -> list[str]:
    best = min(r.update_bytes for r in results)
    new = results[0]
    lines = [
        f"### {pair.name} ({pair.kind})",
        "",
        f"new build: {new.new_files} files, {new.new_bytes / MB:.1f} MB; "
        f"whole build as tar.zst -{BASELINE_ZSTD_LEVEL}: **{baseline / MB:.2f} MB**",
        "",
        "| avg KiB | mean chunk KiB | chunks | chunks to fetch | download MB | manifest KB "
        "| update MB (dl+manifest) | vs tar.zst | vs best | full install MB | cut MB/s | cut+hash MB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        mean_kib = r.new_bytes / max(r.new_chunks, 1) / 1024
        lines.append(
            f"| {r.avg_kib} | {mean_kib:.1f} | {r.new_chunks} | {r.fetch_chunks} "
            f"| {r.download_bytes / MB:.2f} | {r.manifest_bytes / 1000:.0f} "
            f"| {r.update_bytes / MB:.2f} | {100 * r.update_bytes / baseline:.0f}% "
            f"| {r.update_bytes / best:.2f} | {r.full_bytes / MB:.1f} "
            f"| {r.cut_bytes / MB / r.cut_seconds:.0f} "
            f"| {r.cut_bytes / MB / (r.cut_seconds + r.hash_seconds):.0f} |")
    return lines + [""]


def summary_table(all_results: dict[str, list[SizeResult]], baselines: dict[str, int]) -> list[str]:
    """One row per size: how it does across all pairs relative to each pair's
    best size, so one big pair cannot dominate the verdict."""
    lines = [
        "### Summary over all pairs",
        "",
        "| avg KiB | total update MB | total vs tar.zst | geo-mean vs best | worst vs best "
        "| pairs within 10% of best | manifest KB per MB of build | cut MB/s | cut+hash MB/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    best = {name: min(r.update_bytes for r in rs) for name, rs in all_results.items()}
    total_baseline = sum(baselines.values())
    for i, avg in enumerate(AVG_SIZES_KIB):
        rows = {name: rs[i] for name, rs in all_results.items()}
        ratios = [rows[n].update_bytes / best[n] for n in rows]
        update = sum(r.update_bytes for r in rows.values())
        manifest = sum(r.manifest_bytes for r in rows.values())
        built = sum(r.new_bytes for r in rows.values())
        cut_b = sum(r.cut_bytes for r in rows.values())
        cut_s = sum(r.cut_seconds for r in rows.values())
        hash_s = sum(r.hash_seconds for r in rows.values())
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        lines.append(
            f"| {avg} | {update / MB:.2f} | {100 * update / total_baseline:.0f}% | {geo:.3f} "
            f"| {max(ratios):.2f} | {sum(x <= 1.10 for x in ratios)}/{len(ratios)} "
            f"| {manifest / 1000 / (built / MB):.2f} | {cut_b / MB / cut_s:.0f} "
            f"| {cut_b / MB / (cut_s + hash_s):.0f} |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help="comma-separated pair names (default: all)")
    parser.add_argument("--out", type=Path, help="also write the report here, with date and command")
    args = parser.parse_args()

    started = time.perf_counter()
    pairs = corpus_pairs(args.pairs.split(",") if args.pairs else None)
    all_results: dict[str, list[SizeResult]] = {}
    baselines: dict[str, int] = {}
    body: list[str] = []
    for pair in pairs:
        print(f"[{time.perf_counter() - started:5.0f}s] {pair.name}: chunking", file=sys.stderr)
        all_results[pair.name] = measure_pair(pair)
        print(f"[{time.perf_counter() - started:5.0f}s] {pair.name}: tar.zst baseline", file=sys.stderr)
        baselines[pair.name] = baseline_bytes(pair.new_dir)
        body += pair_table(pair, all_results[pair.name], baselines[pair.name])
    body = summary_table(all_results, baselines) + body

    header = [
        "# FastCDC average chunk size",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{' '.join(shlex.quote(a) for a in ['python', 'bench/chunk_sizes.py', *sys.argv[1:]])}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyfastcdc {pyfastcdc.__version__}, zstandard {zstandard.__version__}, {zstd_version()}",
        f"- FastCDC(avg_size=A, min_size=A/4, max_size=4A), default normalisation; files chunked "
        f"one by one; chunks zstd -{CHUNK_ZSTD_LEVEL} one by one; manifest ~"
        f"{MANIFEST_BYTES_PER_CHUNK} B/chunk + {MANIFEST_BYTES_PER_FILE} B/file",
        "- download = compressed size of the new build's distinct chunks the old build lacks; "
        "update = download + new manifest; vs best = update / smallest update of that pair; "
        "full install = all distinct chunks of the new build; cut = FastCDC only, "
        "single-threaded, in-memory",
        f"- run time: {time.perf_counter() - started:.0f} s (tar.zst baselines are cached in {CACHE_DIR}/baseline)",
        "",
    ]
    report = "\n".join(header + body)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
