"""The seeder's /healthz: its chunk store can be read and written."""

from __future__ import annotations

from aiohttp import web

from shared.chunkstore import ChunkStore
from shared.service import health
from shared.service.disk_space import check_free, min_free


def route(store: ChunkStore) -> web.RouteDef:
    """The store can be written, read back and cleaned (`probe`); a store of local files also has disk to spare."""
    checks: dict[str, health.Check] = {"store": store.probe}
    files = store.files
    if files is not None:
        least, root = min_free(), files.root
        checks["disk"] = lambda: check_free(root, least)
    return health.route(checks)
