"""What a push's store operations cost per chunk on a local store (issue 20): touch, sizes and missing.

A push of a build asked them of every distinct chunk (the seeder's missing query touches each, the commit
touched and sized each again); since the push cache work only of the chunks the latest build did not have.
Prints the CPU microseconds per chunk of each and what that comes to for a 100 GB build's 1.55 million.

Usage: .venv/bin/python bench/store_ops.py --objects 20000 --work /var/tmp
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared.chunkstore import DirectoryChunkStore  # noqa: E402

BIG_BUILD_CHUNKS = 1_550_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--work", type=Path, default=None, help="where the store goes (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mist-store-ops-", dir=args.work) as folder:
        store = DirectoryChunkStore(Path(folder), durable=False)
        names = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(args.objects)]
        for name in names:
            store.put(name, b"x" * 100)
        for what, operation in (("touch", store.touch), ("sizes", store.sizes), ("missing", store.missing)):
            started = time.process_time()
            operation(names)
            each = (time.process_time() - started) / args.objects
            print(f"{what}: {each * 1e6:.1f} us CPU a chunk; {each * BIG_BUILD_CHUNKS:.0f} CPU s for 1.55 million")


if __name__ == "__main__":
    main()
