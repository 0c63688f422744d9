"""What an install or update did: the `--json` answer of `mist install` and `mist update`.

Apart from the installer so that `mist install` handed to a running daemon
can rebuild it without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    """What an install or update did, as `--json` reports it."""

    game: str
    version: str
    bytes_written: int
    bytes_downloaded: int
    bytes_reused: int
    bytes_unchanged: int
    files_written: int
    files_deleted: int
    files_unchanged: int
    seconds: float
    plan: dict[str, object]
    bytes_by_source: dict[str, int]  # received: chunk packs, patch objects, rdiff deltas
    files_by_source: dict[str, int]  # written from: local chunks only, chunks, a patch, an rdiff delta
    rdiff_signature_bytes: int  # sent: signatures of local files no build has
    fell_back_to_chunks: list[str]  # files whose patch or delta failed to verify, fetched by chunks instead
    bytes_from_seeder: int  # of bytes_downloaded: from the seeder (chunks, patches, deltas)
    bytes_from_peers: int  # of bytes_downloaded: chunks from friends online
    peers_used: int  # friends who served chunks (or were connected to serve them)
    peers_dropped: dict[str, str]  # friend -> why (a corrupt chunk); reported to the admin
    previous_version: str = ""  # the build installed before ("": a fresh install)
    change: str = "install"  # install, update, downgrade, reinstall (the same build: a repair), or current
    files_kept: list[str] = field(default_factory=list)  # dropped by the build but changed by the friend: left
    links_made: int = 0
    files_in_place: int = 0  # large files of which only the changed chunks were written (a clone, or in place)
    bytes_saved_for_undo: int = 0  # old bytes journaled before files were updated in place
    # What this process had the disk write during the command, as the kernel counts pages dirtied (Linux; -1
    # elsewhere). A file cached in large folios counts a whole folio for a small write into it (DECISIONS).
    disk_bytes_written: int = -1
    manifest_bytes: int = 0  # received for the new build's manifest: a delta when a build of the game was here

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)
