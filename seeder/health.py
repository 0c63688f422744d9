"""The seeder's /healthz: its chunk store can be read and written."""

from __future__ import annotations

import os
import uuid

from aiohttp import web

from shared.chunkstore import ChunkStore, DirectoryChunkStore
from shared.errors import StoreError
from shared.service import health
from shared.service.disk_space import check_free, min_free

PROBE = b"mist health probe\n"


def check_store(store: ChunkStore) -> None:
    """A directory store: list its root, write, read back and remove a small file (named as a writer's temporary
    file, so the sweep removes one a crash left). Another store: read one object's presence."""
    if not isinstance(store, DirectoryChunkStore):
        store.missing(["0" * 64])
        return
    probe = store.root / f".tmp-healthz-{uuid.uuid4().hex}"
    try:
        with os.scandir(store.root) as entries:
            next(entries, None)
        with open(probe, "xb") as f:
            f.write(PROBE)
        with open(probe, "rb") as f:
            if f.read() != PROBE:
                raise StoreError(f"chunk store at {store.root} gave back other bytes than were written")
    except OSError as exc:
        raise StoreError(f"chunk store at {store.root} cannot be read and written: {exc.strerror or exc}") from exc
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def route(store: ChunkStore) -> web.RouteDef:
    checks: dict[str, health.Check] = {"store": lambda: check_store(store)}
    if isinstance(store, DirectoryChunkStore):
        least = min_free()
        checks["disk"] = lambda: check_free(store.root, least)
    return health.route(checks)
