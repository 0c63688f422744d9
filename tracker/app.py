"""The tracker as an aiohttp application."""

from __future__ import annotations

from aiohttp import web

from tracker import accounts, builds, catalog, maintenance, updates
from tracker.config import TrackerContext
from tracker.web import CONTEXT, errors_middleware

MAX_BODY = 256 * 1024 * 1024


def make_app(ctx: TrackerContext) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[CONTEXT] = ctx
    app.add_routes(accounts.routes() + catalog.routes() + builds.routes() + updates.routes() + maintenance.routes())
    return app
