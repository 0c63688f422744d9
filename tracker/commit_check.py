"""Before a build is committed: do its files' chunks make the files its manifest names?

The seeder checks each chunk against its own name at upload, but a manifest
could still pair a file's SHA-256 with chunks that make another content
(a bug in a pushing tool, or a hostile admin token); every client would then
refuse the file after downloading it. So the tracker rebuilds, chunk by
chunk, each file content no committed build of the game had, and refuses the
build naming the files that do not match. Contents the game's latest build
had were checked when it was committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from shared import compression
from shared.chunkstore import ChunkStore
from shared.manifest import Manifest


def mismatched_files(store: ChunkStore, manifest: Manifest, known: Iterable[str]) -> list[str]:
    """Paths of the files whose chunks (as stored) do not hash to the file's SHA-256; each new content read once."""
    checked = set(known)
    bad: list[str] = []
    for entry in manifest.files:
        if entry.sha256 in checked:
            continue
        digest = hashlib.sha256()
        for ref in entry.chunks:
            digest.update(compression.decompress(store.get(ref.sha256), ref.size, ref.sha256))
        if digest.hexdigest() != entry.sha256:
            bad.append(entry.path)
        else:
            checked.add(entry.sha256)
    return bad
