"""Measure how Mist should zstd-compress its chunks: which level, and whether a
per-game dictionary is worth it.

Every FastCDC chunk (shared/chunking.py parameters) is compressed on its own,
so zstd never sees more than one chunk of context; that is why a fresh install
is much larger than the whole build as one tar.zst -19 (bench/results/
chunk_sizes.md). This script measures, on the real release pairs from
bench/corpus.py:

- plain per-chunk zstd at levels 3, 9, 12, 15, 19: bytes, single-thread
  compression MB/s, decompression MB/s;
- a per-game zstd dictionary (zstandard.train_dictionary, 64 KiB and 112 KiB,
  fixed k=1024 by default: see train()) trained on a random sample of the OLD
  build's chunks (as if trained at the
  game's first push and reused for every later build), applied to the NEW
  build's chunks at levels 9 and 19; a fresh install also downloads the
  dictionary, so its size is added there (an update does not: the client
  already holds it);
- the whole new build as tar.zst -19 and -9, for reference.

fresh install = every distinct chunk of the new build; update = the distinct
chunks of the new build that the old build lacks. Manifests are left out: they
are the same for every variant.

Levels 3, 9 and 12 compress every chunk. The slow variants (level 15, 19 and the
dictionary ones) compress a deterministic sample of chunks (those whose SHA-256
falls below --fraction, and at least --min-sample chunks per pair) and their
totals are ratio estimates: total(V) = total(R) * sample(V) / sample(R), with
R = level 9 for dictionary-at-9 and level 12 otherwise, both measured on the
very same sampled chunks. Speeds are measured on the chunks actually compressed.

Usage: python bench/chunk_compression.py [--pairs a,b] [--fraction 0.2] [--dict-k 1024]
                                         [--out bench/results/chunk_compression.md]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyfastcdc
import zstandard
from pyfastcdc import FastCDC

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from chunk_sizes import baseline_bytes, build_files, zstd_version  # noqa: E402
from corpus import Pair, corpus_pairs  # noqa: E402

from shared.chunking import DEFAULT_PARAMS  # noqa: E402

MB = 1_000_000
FULL_LEVELS = (3, 9, 12)  # fast enough to compress every chunk
SAMPLED_LEVELS = (15, 19)
DICT_SIZES = (64 * 1024, 112 * 1024)
DICT_LEVELS = (9, 19)
TRAIN_BUDGET = 16 * 1024 * 1024  # bytes of old-build chunks fed to the trainer (>= 100x the dictionary)
TRAIN_SEED = 20261127
PUSH_GB = 50
PUSH_CORES = 2
DECOMP_REPEATS = 3  # decompression is cheap: keep the best of 3 passes


@dataclass(frozen=True)
class Variant:
    name: str
    level: int
    dict_size: int = 0  # 0: no dictionary
    sampled: bool = False

    @property
    def ref(self) -> str:
        """The fully measured variant a sampled one is ratio-estimated against."""
        return "zstd -9" if self.dict_size and self.level == 9 else "zstd -12"

    @property
    def same_level_plain(self) -> str:
        return f"zstd -{self.level}"


VARIANTS: tuple[Variant, ...] = (
    *(Variant(f"zstd -{lv}", lv) for lv in FULL_LEVELS),
    *(Variant(f"zstd -{lv}", lv, sampled=True) for lv in SAMPLED_LEVELS),
    *(Variant(f"dict {ds // 1024}K -{lv}", lv, ds, sampled=True) for lv in DICT_LEVELS for ds in DICT_SIZES),
)


@dataclass
class Measured:
    """Per-chunk compressed sizes of one variant plus its timings."""

    sizes: dict[bytes, int] = field(default_factory=dict)
    raw_bytes: int = 0
    comp_seconds: float = 0.0
    decomp_seconds: float = 0.0

    @property
    def comp_mbps(self) -> float:
        return self.raw_bytes / MB / self.comp_seconds if self.comp_seconds else float("nan")

    @property
    def decomp_mbps(self) -> float:
        return self.raw_bytes / MB / self.decomp_seconds if self.decomp_seconds else float("nan")


@dataclass
class PairResult:
    pair: Pair
    new_files: int
    new_bytes: int
    fresh: dict[bytes, int]  # digest -> raw size, distinct chunks of the new build
    update: set[bytes]  # digests of the new build the old build lacks
    sample: set[bytes]
    fraction: float
    measured: dict[str, Measured]
    dict_bytes: dict[int, int]  # requested size -> actual dictionary size
    train_seconds: dict[int, float]
    train_sample: tuple[int, int]  # (chunks, bytes) fed to the trainer
    tar19: int
    tar9: int

    def total(self, name: str, digests: set[bytes] | dict[bytes, int]) -> float:
        """Compressed bytes of these chunks under a variant (ratio estimate if sampled)."""
        var = next(v for v in VARIANTS if v.name == name)
        m = self.measured[name]
        if not var.sampled:
            return float(sum(m.sizes[d] for d in digests))
        ref = self.measured[var.ref]
        in_sample = [d for d in digests if d in self.sample]
        full_ref = sum(ref.sizes[d] for d in digests)
        sample_ref = sum(ref.sizes[d] for d in in_sample)
        if not in_sample or not sample_ref:
            return float("nan")
        return full_ref * sum(m.sizes[d] for d in in_sample) / sample_ref

    def fresh_bytes(self, name: str) -> float:
        var = next(v for v in VARIANTS if v.name == name)
        return self.total(name, self.fresh) + (self.dict_bytes[var.dict_size] if var.dict_size else 0)

    def update_bytes(self, name: str) -> float:
        return self.total(name, self.update)


def make_cdc() -> FastCDC:
    p = DEFAULT_PARAMS
    return FastCDC(p.avg_size, min_size=p.min_size, max_size=p.max_size,
                   normalized_chunking=p.normalization)  # type: ignore[arg-type]


def distinct_chunks(root: Path) -> tuple[dict[bytes, bytes], int, int]:
    """Distinct chunks of a build (digest -> bytes), its file count and byte count."""
    cdc = make_cdc()
    chunks: dict[bytes, bytes] = {}
    files = total = 0
    for path in build_files(root):
        data = path.read_bytes()
        files += 1
        total += len(data)
        view = memoryview(data)
        for c in cdc.cut_buf(data) if data else ():
            piece = view[c.offset:c.offset + c.length]
            digest = hashlib.sha256(piece).digest()
            if digest not in chunks:
                chunks[digest] = bytes(piece)
    return chunks, files, total


def in_sample(digest: bytes, fraction: float) -> bool:
    return int.from_bytes(digest[:4], "big") < fraction * 2**32


def train(old: dict[bytes, bytes], size: int, k: int) -> tuple[zstandard.ZstdCompressionDict, float, int, int]:
    """Train a dictionary on a seeded random sample of the old build's chunks.

    k = 0 lets train_dictionary search segment sizes itself (what `zstd --train`
    does); on whole 64 KiB chunks that search is unstable: for some samples it
    picks k=50 and returns a dictionary of a few KB that saves nothing. A fixed
    k (with d=8, the default dmer size) always fills the requested size."""
    rng = random.Random(TRAIN_SEED)
    order = sorted(old)
    rng.shuffle(order)
    samples: list[bytes] = []
    budget = TRAIN_BUDGET
    for d in order:
        if budget <= 0:
            break
        samples.append(old[d])
        budget -= len(old[d])
    t0 = time.thread_time()
    zd = zstandard.train_dictionary(size, samples, k=k, d=8 if k else 0)
    return zd, time.thread_time() - t0, len(samples), sum(map(len, samples))


def measure(var: Variant, chunks: list[tuple[bytes, bytes]], zdict: zstandard.ZstdCompressionDict | None) -> Measured:
    """Compress each chunk on its own, then decompress and check every one."""
    kwargs: dict[str, object] = {"level": var.level, "write_content_size": True}
    if zdict is not None:
        kwargs["dict_data"] = zdict
    zc = zstandard.ZstdCompressor(**kwargs)  # type: ignore[arg-type]
    zd = zstandard.ZstdDecompressor(dict_data=zdict) if zdict is not None else zstandard.ZstdDecompressor()
    m = Measured()
    packed: list[bytes] = []
    # CPU time of this thread, not wall time: the 2-core machine may be shared,
    # and a time-sliced wall clock would understate the speed
    t0 = time.thread_time()
    for _, raw in chunks:
        packed.append(zc.compress(raw))
    m.comp_seconds = time.thread_time() - t0
    best = float("inf")
    for _ in range(DECOMP_REPEATS):
        t0 = time.thread_time()
        outs = [zd.decompress(p, max_output_size=len(raw)) for p, (_, raw) in zip(packed, chunks)]
        best = min(best, time.thread_time() - t0)
    m.decomp_seconds = best
    for out, (digest, raw) in zip(outs, chunks):
        if out != raw:
            raise RuntimeError(f"{var.name}: chunk {digest.hex()[:12]} did not round-trip")
    for p, (digest, raw) in zip(packed, chunks):
        m.sizes[digest] = len(p)
        m.raw_bytes += len(raw)
    return m


def tar_zst_bytes(new_dir: Path, level: int) -> int:
    """`tar -C new . | zstd -L -T2`; level 19 comes from chunk_sizes.py's cache."""
    if level == 19:
        return baseline_bytes(new_dir)
    tar = subprocess.Popen(["tar", "-C", str(new_dir), "-cf", "-", "."], stdout=subprocess.PIPE)
    zst = subprocess.Popen(["zstd", f"-{level}", "-T2", "-q", "-c"], stdin=tar.stdout, stdout=subprocess.PIPE)
    assert tar.stdout is not None and zst.stdout is not None
    tar.stdout.close()
    total = 0
    while block := zst.stdout.read(1 << 20):
        total += len(block)
    if tar.wait() != 0 or zst.wait() != 0:
        raise RuntimeError(f"tar | zstd failed for {new_dir}")
    return total


def log(started: float, msg: str) -> None:
    print(f"[{time.perf_counter() - started:5.0f}s] {msg}", file=sys.stderr, flush=True)


def measure_pair(pair: Pair, args: argparse.Namespace, plain_cache: dict[Path, tuple], started: float) -> PairResult:
    log(started, f"{pair.name}: chunking")
    old, _, _ = distinct_chunks(pair.old_dir)
    new, new_files, new_bytes = distinct_chunks(pair.new_dir)
    fraction = min(1.0, max(args.fraction, args.min_sample / max(len(new), 1)))
    sample = {d for d in new if in_sample(d, fraction)}
    everything = sorted(new.items())
    sampled = [(d, c) for d, c in everything if d in sample]
    measured: dict[str, Measured] = {}
    if pair.new_dir in plain_cache:  # panda3d-jump shares its new build with panda3d
        measured.update(plain_cache[pair.new_dir])
    for var in VARIANTS:
        if var.dict_size or var.name in measured:
            continue
        log(started, f"{pair.name}: {var.name}")
        measured[var.name] = measure(var, sampled if var.sampled else everything, None)
    plain_cache[pair.new_dir] = {k: v for k, v in measured.items()}
    dict_bytes: dict[int, int] = {}
    train_seconds: dict[int, float] = {}
    train_sample = (0, 0)
    for size in DICT_SIZES:
        log(started, f"{pair.name}: training {size // 1024} KiB dictionary")
        zdict, secs, n, b = train(old, size, args.dict_k)
        raw = zdict.as_bytes()
        dict_bytes[size], train_seconds[size], train_sample = len(raw), secs, (n, b)
        for var in VARIANTS:
            if var.dict_size != size:
                continue
            log(started, f"{pair.name}: {var.name}")
            # a fresh dictionary object per variant, loaded the way the product would
            measured[var.name] = measure(var, sampled, zstandard.ZstdCompressionDict(raw))
    log(started, f"{pair.name}: tar.zst baselines")
    return PairResult(pair, new_files, new_bytes, {d: len(c) for d, c in new.items()},
                      set(new) - set(old), sample, fraction, measured, dict_bytes, train_seconds,
                      train_sample, tar_zst_bytes(pair.new_dir, 19), tar_zst_bytes(pair.new_dir, 9))


def pct(x: float, base: float) -> str:
    return f"{100 * x / base:.0f}%"


def push_hours(mbps: float) -> str:
    return f"{PUSH_GB * 1000 / (mbps * PUSH_CORES) / 3600:.1f} h"


TABLE_HEAD = [
    "| variant | dict B | fresh install MB | fresh vs tar.zst -19 | update MB | update vs tar.zst -19 "
    "| vs same level, no dict (fresh / update) | compress MB/s (1 thread) | decompress MB/s "
    f"| {PUSH_GB} GB push on {PUSH_CORES} cores |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def rows(fresh: dict[str, float], update: dict[str, float], dict_b: dict[int, str], tar19: float, tar9: float,
         cmb: dict[str, float], dmb: dict[str, float]) -> list[str]:
    out = [
        f"| tar.zst -19 (whole build) | | {tar19 / MB:.2f} | 100% | {tar19 / MB:.2f} | 100% | | | | |",
        f"| tar.zst -9 (whole build) | | {tar9 / MB:.2f} | {pct(tar9, tar19)} | {tar9 / MB:.2f} "
        f"| {pct(tar9, tar19)} | | | | |",
    ]
    for var in VARIANTS:
        n = var.name
        vs = ""
        if var.dict_size:
            base = var.same_level_plain
            vs = (f"{100 * (fresh[n] / fresh[base] - 1):+.1f}% / "
                  f"{100 * (update[n] / update[base] - 1):+.1f}%")
        label = n + (" *" if var.sampled else "")
        out.append(
            f"| {label} | {dict_b.get(var.dict_size, '') if var.dict_size else ''} | {fresh[n] / MB:.2f} "
            f"| {pct(fresh[n], tar19)} | {update[n] / MB:.2f} | {pct(update[n], tar19)} | {vs} "
            f"| {cmb[n]:.1f} | {dmb[n]:.0f} | {push_hours(cmb[n])} |")
    return out


def pair_section(r: PairResult) -> list[str]:
    fresh = {v.name: r.fresh_bytes(v.name) for v in VARIANTS}
    update = {v.name: r.update_bytes(v.name) for v in VARIANTS}
    cmb = {v.name: r.measured[v.name].comp_mbps for v in VARIANTS}
    dmb = {v.name: r.measured[v.name].decomp_mbps for v in VARIANTS}
    dict_b = {s: str(b) for s, b in r.dict_bytes.items()}
    n_sample = len(r.sample)
    n_upd_sample = len(r.update & r.sample)
    train = ", ".join(f"{s // 1024} KiB in {r.train_seconds[s]:.1f} s" for s in DICT_SIZES)
    return [
        f"### {r.pair.name} ({r.pair.kind})",
        "",
        f"new build: {r.new_files} files, {r.new_bytes / MB:.1f} MB, {len(r.fresh)} distinct chunks "
        f"({sum(r.fresh.values()) / MB:.1f} MB), {len(r.update)} of them new "
        f"({sum(r.fresh[d] for d in r.update) / MB:.1f} MB); * = sampled: {n_sample} chunks "
        f"({100 * r.fraction:.0f}%), {n_upd_sample} of the update's; dictionaries trained on "
        f"{r.train_sample[0]} old chunks ({r.train_sample[1] / MB:.1f} MB): {train} (CPU)",
        "",
        *TABLE_HEAD,
        *rows(fresh, update, dict_b, r.tar19, r.tar9, cmb, dmb),
        "",
    ]


def summary_section(results: list[PairResult]) -> list[str]:
    fresh = {v.name: sum(r.fresh_bytes(v.name) for r in results) for v in VARIANTS}
    update = {v.name: sum(r.update_bytes(v.name) for r in results) for v in VARIANTS}
    cmb, dmb = {}, {}
    for v in VARIANTS:
        seen = {id(r.measured[v.name]): r.measured[v.name] for r in results}.values()  # panda3d counted once
        cmb[v.name] = sum(m.raw_bytes for m in seen) / MB / sum(m.comp_seconds for m in seen)
        dmb[v.name] = sum(m.raw_bytes for m in seen) / MB / sum(m.decomp_seconds for m in seen)
    dict_b = {s: "~" + str(round(sum(r.dict_bytes[s] for r in results) / len(results)))
              + f" x{len(results)}" for s in DICT_SIZES}
    tar19 = sum(r.tar19 for r in results)
    tar9 = sum(r.tar9 for r in results)
    lines = [
        "### Summary over all pairs (sums; each pair's dictionary counted in its fresh install)",
        "",
        *TABLE_HEAD,
        *rows(fresh, update, dict_b, tar19, tar9, cmb, dmb),
        "",
        "Per pair, dictionary effect (change vs the same level without a dictionary; fresh includes the "
        "dictionary's bytes):",
        "",
        "| pair | " + " | ".join(f"{v.name} fresh / update" for v in VARIANTS if v.dict_size) + " |",
        "|---|" + "---:|" * sum(1 for v in VARIANTS if v.dict_size),
    ]
    for r in results:
        cells = []
        for v in VARIANTS:
            if not v.dict_size:
                continue
            base = v.same_level_plain
            cells.append(f"{100 * (r.fresh_bytes(v.name) / r.fresh_bytes(base) - 1):+.1f}% / "
                         f"{100 * (r.update_bytes(v.name) / r.update_bytes(base) - 1):+.1f}%")
        lines.append(f"| {r.pair.name} | " + " | ".join(cells) + " |")
    lines += ["", "Per pair, plain levels (fresh install vs tar.zst -19):", "",
              "| pair | " + " | ".join(v.name for v in VARIANTS if not v.dict_size) + " |",
              "|---|" + "---:|" * sum(1 for v in VARIANTS if not v.dict_size)]
    for r in results:
        lines.append(f"| {r.pair.name} | " + " | ".join(
            pct(r.fresh_bytes(v.name), r.tar19) for v in VARIANTS if not v.dict_size) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", help="comma-separated pair names (default: all)")
    parser.add_argument("--fraction", type=float, default=0.2,
                        help="share of chunks the slow variants compress (default 0.2)")
    parser.add_argument("--min-sample", type=int, default=400,
                        help="compress at least this many chunks per pair in the slow variants (default 400)")
    parser.add_argument("--dict-k", type=int, default=1024,
                        help="fastCover segment size for dictionary training; 0 = let train_dictionary "
                             "search it (default 1024, d=8)")
    parser.add_argument("--out", type=Path, help="also write the report here, with date and command")
    args = parser.parse_args()

    started = time.perf_counter()
    plain_cache: dict[Path, tuple] = {}
    results = [measure_pair(p, args, plain_cache, started)
               for p in corpus_pairs(args.pairs.split(",") if args.pairs else None)]
    body = summary_section(results)
    for r in results:
        body += pair_section(r)
    p = DEFAULT_PARAMS
    header = [
        "# Per-chunk zstd: level and per-game dictionaries",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- command: `{' '.join(shlex.quote(a) for a in ['python', 'bench/chunk_compression.py', *sys.argv[1:]])}`",
        f"- machine: {os.cpu_count()} cores, Python {platform.python_version()}, pyfastcdc {pyfastcdc.__version__}, "
        f"zstandard {zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION}), CLI {zstd_version()}",
        f"- chunks: FastCDC avg {p.avg_size // 1024} KiB, min {p.min_size // 1024} KiB, max {p.max_size // 1024} KiB "
        f"(shared/chunking.py), files chunked one by one; each chunk one zstd frame "
        "(`ZstdCompressor(level=L, write_content_size=True[, dict_data=D])`), as shared/compression.py does",
        "- fresh install = all distinct chunks of the new build (+ the dictionary, if any); update = the distinct "
        "chunks of the new build the old build lacks (the client already has the dictionary); manifests left out "
        "(identical for every variant, ~1.3 KB per MB of build)",
        f"- dictionaries: `zstandard.train_dictionary(size, samples{f', k={args.dict_k}, d=8' if args.dict_k else ''})` "
        "(fastCover; "
        + ("k fixed because the default k search is unstable on whole chunks: it sometimes picks k=50 and returns "
           "a dictionary of 0.3-14 KB that saves nothing (panda3d 1.10.13 with this seed: 7.9 and 13.6 KB, "
           "+0.1% bytes)" if args.dict_k else "default parameters, as `zstd --train`")
        + f"), single thread (training time = CPU time), on a seeded random sample of the OLD build's distinct chunks (up to "
        f"{TRAIN_BUDGET // (1024 * 1024)} MiB), i.e. trained at the game's first push and reused for the next "
        "build; dictionary size in bytes in column 'dict B'",
        f"- `*` = sampled: levels 3/9/12 compress every chunk; level 15, 19 and the dictionary variants compress "
        f"only the chunks whose SHA-256 falls in the first {args.fraction:.0%} of the hash space (at least "
        f"{args.min_sample} chunks per pair, all of them for small pairs); their totals are ratio estimates "
        "against level 12 (dictionary at 9: against level 9) measured on the same chunks, so "
        "the 'vs same level, no dict' column compares identical chunks",
        "- speeds: single thread, in memory, uncompressed MB per second of the thread's CPU time (time.thread_time, "
        "so that other load on the machine does not skew them) over the chunks actually compressed; decompression "
        f"= best of {DECOMP_REPEATS} passes; '{PUSH_GB} GB push' = {PUSH_GB} GB / ({PUSH_CORES} x compress MB/s), compression "
        "alone, assuming both cores stay busy (zstandard releases the GIL)",
        "- tar.zst: `tar -C new . | zstd -L -T2` (the -19 figures are chunk_sizes.py's cached baselines); "
        "its update is the whole build again",
        "- summary sums every pair, so panda3d 1.10.16 (the new build of panda3d and panda3d-jump) counts twice, "
        "as in chunk_sizes.md",
        f"- run time: {time.perf_counter() - started:.0f} s",
        "",
    ]
    report = "\n".join(header + body)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)


if __name__ == "__main__":
    main()
