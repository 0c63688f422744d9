"""The store scrub: find objects whose bytes no longer hash to their name (bit rot, a bad disk) and set them aside.

A quarantined chunk is simply missing from the store, so clients are never
served it, `mistpipe push` of any build that has it uploads it again (the
missing-chunks query names it; or, for a chunk of the latest build, which a
push does not ask about, the commit checks the store's list of quarantined
chunks and names it), and the scrub report tells the admin which builds
need that push.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from shared import compression
from shared.chunkstore import ChunkStore, names
from shared.errors import ChunkCorrupt, ChunkMissing

TEMPORARY_GRACE = 3600


@dataclass
class ScrubReport:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    temporary_removed: int = 0

    def to_json(self) -> dict[str, object]:
        return {"checked": self.checked, "corrupt": self.corrupt, "temporary_removed": self.temporary_removed}


def intact(store: ChunkStore, name: str) -> bool:
    try:
        stored = store.get(name)
    except ChunkMissing:
        return True  # removed while we looked: nothing to quarantine
    try:
        data = compression.decompress(stored, compression.content_size(stored), name)
    except ChunkCorrupt:
        return False
    return hashlib.sha256(data).hexdigest() == name


def scrub(store: ChunkStore, now: float | None = None) -> ScrubReport:
    """Check every object, quarantine the damaged ones, and sweep temporary files older than an hour.

    The store is probed first: a store that is gone (an unmounted disk, a deleted bucket) lists no objects,
    and a scrub must not report that as all well (StoreError, and the job fails)."""
    store.probe()
    report = ScrubReport()
    for name in names(store):
        report.checked += 1
        if not intact(store, name):
            store.quarantine(name)
            report.corrupt.append(name)
    report.temporary_removed = store.sweep_temporary((now or time.time()) - TEMPORARY_GRACE)
    return report
