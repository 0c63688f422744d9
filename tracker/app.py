"""The tracker as an aiohttp application."""

from __future__ import annotations

from aiohttp import web

from tracker import accounts, announce, builds, catalog, maintenance, peers_admin, swarm, updates
from tracker.config import TrackerContext
from tracker.web import CONTEXT, errors_middleware

MAX_BODY = 256 * 1024 * 1024


def make_app(ctx: TrackerContext) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    app[swarm.SWARM] = swarm.Swarm.from_environment()
    app[announce.ANNOUNCER] = announce.Announcer(ctx, app[swarm.SWARM])
    app.cleanup_ctx.append(announce.announcing)
    app.on_shutdown.append(swarm.close_all)
    app.add_routes(accounts.routes() + catalog.routes() + builds.routes() + updates.routes() + maintenance.routes()
                   + swarm.routes() + peers_admin.routes())
    return app
