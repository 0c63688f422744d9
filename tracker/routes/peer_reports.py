"""Admin route: what friends' clients reported about peers that sent them corrupt chunks (issue 5)."""

from __future__ import annotations

from aiohttp import web

from tracker.db.peer_reports import recent_reports, reports_by_peer
from tracker.routes.web import CONTEXT, admin


async def peer_reports(request: web.Request) -> web.Response:
    admin(request)
    reports, by_peer = await request.app[CONTEXT].db.run(lambda s: (recent_reports(s), reports_by_peer(s)))
    return web.json_response({"reports": [r.to_json() for r in reports], "by_peer": [p.to_json() for p in by_peer]})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/admin/peer-reports", peer_reports)]
