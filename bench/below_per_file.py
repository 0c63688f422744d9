"""Issue 19.3: how far below per-file HDiffPatch the two ways Mist now has go, on the delta_bench pairs.

- Small changed files as one patch bundle (shared/patch_bundle.py): the
  changed files of 512 bytes to 1 MiB of each pair, as per-file HDiffPatch
  objects (each with its 81-byte header and a 37-byte pack record, as Mist
  ships them) against the bundles the worker's job would make of them
  (tracker/jobs/patching.py `bundle_groups`; one 37-byte record each).
- Added files patched from another file of the old build (renamed, moved,
  a versioned folder): the source the tracker's job would choose
  (tracker/planner.py `SourceIndex`, here by name only: the product also
  weighs shared chunks) against the anchor's way for an added file, the whole
  file zstd -19.

Bytes are uncompressed objects (the store compresses patches again only at
level 1, which gains nothing on lzma output). One process, pairs in turn;
CPU seconds of making each side are shown.

Usage: .venv/bin/python bench/below_per_file.py [--pairs a,b] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import zstandard  # noqa: E402

import delta_bench as db  # noqa: E402
from corpus import corpus_pairs  # noqa: E402
from shared import patch, patch_bundle  # noqa: E402
from shared.chunking import DEFAULT_PARAMS  # noqa: E402
from shared.manifest import FileEntry, Manifest  # noqa: E402
from tracker.jobs.patching import bundle_groups  # noqa: E402
from tracker.planner import MIN_PATCH_FILE, SourceIndex  # noqa: E402

RECORD = 37  # a pack record's framing, per object sent
PAIRS = ("esbuild", "esbuild-jump", "browser-compat-data", "panda3d", "openjdk-17-jre", "panda3d-jump")
KB = 1000


def entry(rel: str, path: str) -> FileEntry:
    data = Path(path).read_bytes()
    return FileEntry(rel, len(data), False, hashlib.sha256(data).hexdigest(), ())


def measure(pair: db.Pair) -> dict[str, float]:
    diff = db.build_diff(pair)
    new_files = {c.rel: c.new for c in diff.to_ship}
    old_files = {c.rel: c.old for c in diff.changed if c.old}
    changed = [(entry(c.rel, c.old), entry(c.rel, c.new)) for c in diff.changed if c.old]
    small = [(o, n) for o, n in changed if MIN_PATCH_FILE <= n.size <= patch_bundle.MAX_MEMBER_FILE]

    def contents(pairs: list[tuple[FileEntry, FileEntry]]) -> list[tuple[bytes, bytes]]:
        return [(Path(old_files[o.path]).read_bytes(), Path(new_files[n.path]).read_bytes()) for o, n in pairs]

    started = time.process_time()
    each = {n.path: len(patch.make(old, new)) + RECORD for (_, n), (old, new) in zip(small, contents(small))}
    per_file_s = time.process_time() - started
    started = time.process_time()
    groups = bundle_groups(small)
    bundled = sum(len(patch_bundle.make(contents(group))) + RECORD for group in groups)
    bundle_s = time.process_time() - started
    in_bundles = {n.path for group in groups for _, n in group}
    bundled += sum(size for path, size in each.items() if path not in in_bundles)  # a group of one: its own patch

    old_tree = db.pa.regular_files(pair.old_dir)
    old_build = Manifest("bench", "old", DEFAULT_PARAMS, tuple(entry(rel, str(p)) for rel, p in sorted(old_tree.items())))
    index = SourceIndex(old_build, set(), set(db.pa.regular_files(pair.new_dir)))
    whole = moved = found = 0
    for c in diff.added:
        data = Path(c.new).read_bytes()
        as_whole = len(zstandard.ZstdCompressor(level=db.WHOLE_LEVEL).compress(data))
        whole += as_whole
        source = index.moved_from(entry(c.rel, c.new))
        if source is None:
            moved += as_whole
            continue
        found += 1
        moved += min(as_whole, len(patch.make(old_tree[source.path].read_bytes(), data)) + RECORD)
    return {"small": len(small), "members": len(in_bundles), "per_file": sum(each.values()), "bundle": bundled,
            "per_file_s": per_file_s, "bundle_s": bundle_s, "added": len(diff.added), "found": found,
            "whole": whole, "moved": moved}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        "| pair | changed files <= 1 MiB (in bundles) | per-file HDiffPatch kB | one bundle per source kB | bundle / per-file "
        "| make s: per-file, bundle | added files (source found) | added, whole zstd -19 kB | added, patched from "
        "another file kB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for pair in corpus_pairs([p.strip() for p in args.pairs.split(",") if p.strip()]):
        m = measure(pair)
        ratio = f"{m['bundle'] / m['per_file']:.2f}" if m["per_file"] and m["members"] else "-"
        lines.append(f"| {pair.name} | {m['small']} ({m['members']}) | {m['per_file'] / KB:.1f} | "
                     f"{m['bundle'] / KB:.1f} | {ratio} | {m['per_file_s']:.1f}, {m['bundle_s']:.1f} | "
                     f"{m['added']} ({m['found']}) | {m['whole'] / KB:.1f} | {m['moved'] / KB:.1f} |")
        print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
