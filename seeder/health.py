"""The seeder's /healthz: its chunk store can be read and written."""

from __future__ import annotations

from aiohttp import web

from shared.chunkstore import ChunkStore
from shared.service import health
from shared.service.disk_space import check_free


def route(store: ChunkStore, min_free: int) -> web.RouteDef:
    """The store can be written, read back and cleaned (`probe`); a store of local files also has `min_free`
    bytes of disk to spare."""
    checks: dict[str, health.Check] = {"store": store.probe}
    files = store.files
    if files is not None:
        root = files.root
        checks["disk"] = lambda: check_free(root, min_free)
    return health.route(checks)
