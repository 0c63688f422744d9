"""The tracker as an aiohttp application."""

from __future__ import annotations

from aiohttp import web

from shared.service import disk_space, forwarded, health, observability
from shared.service.metrics import METRICS, HttpMetrics, Registry, metrics_route
from tracker import admin, announce
from tracker.config import TrackerContext
from tracker.counters import COUNTERS, TrackerCounters, job_readings, swarm_readings
from tracker.routes import accounts, builds, catalog, finished, get_page, maintenance, peer_reports, swarm, updates
from tracker.routes.web import CONTEXT, errors_middleware, sessions_middleware

MAX_BODY = 256 * 1024 * 1024


def make_app(ctx: TrackerContext) -> web.Application:
    """The tracker with its /metrics and /healthz; the embedded server adds the seeder's metrics to its registry."""
    registry = Registry()
    service = ctx.settings.service
    app = web.Application(
        middlewares=[
            forwarded.middleware(service.trusted_proxies),
            observability.observe(HttpMetrics.on(registry)),
            errors_middleware,
            sessions_middleware,
        ],
        client_max_size=MAX_BODY,
    )
    app[CONTEXT] = ctx
    app[METRICS] = registry
    app[COUNTERS] = TrackerCounters.on(registry)
    app[swarm.SWARM] = members = swarm.Swarm.from_settings(ctx.settings)
    registry.read_at_scrape(lambda: swarm_readings(len(members.members), sum(m.sharing for m in list(members.members.values()))))
    registry.read_at_scrape(lambda: job_readings(ctx.jobs))
    observability.install(app)
    app[announce.ANNOUNCER] = announce.Announcer(ctx, members)
    app.cleanup_ctx.append(announce.announcing)
    app.on_shutdown.append(swarm.close_all)
    app.add_routes(
        accounts.routes()
        + catalog.routes()
        + builds.routes()
        + updates.routes()
        + maintenance.routes()
        + swarm.routes()
        + peer_reports.routes()
        + finished.routes()
    )
    app.add_routes(
        [
            metrics_route(service.metrics_token),
            health.route(
                {
                    "database": ctx.db.ping,
                    "jobs": ctx.jobs.pending,
                    "disk": lambda: disk_space.check_free(ctx.settings.data, service.disk_min_free),
                }
            ),
        ]
    )
    app.add_routes(admin.api_routes())
    app.add_subapp("/admin", admin.make_admin_app(ctx))
    get_page.setup(app)
    return app
