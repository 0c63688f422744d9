"""The dashboard: the catalog and friends in numbers, where the bytes came from this day and week, the store,
the jobs, and the latest pushes."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from tracker.admin import charts, overview
from tracker.db import activity, admin_views, job_log
from tracker.routes.web import CONTEXT

DAY, WEEK = 86400.0, 7 * 86400.0


async def dashboard(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    now = ctx.now
    counts, transfers, failed, latest = await ctx.db.run(
        lambda s: (
            admin_views.counts(s),
            activity.transfers_since(s, now - WEEK),
            job_log.failed_since(s, now - WEEK),
            admin_views.latest_builds(s),
        )
    )
    day = charts.buckets(transfers, now, DAY, 24, "%H:00")
    week = charts.buckets(transfers, now, WEEK, 7, "%a %d")
    store = await overview.store_figures(ctx, overview.DASHBOARD_MAX_AGE)
    jobs = await overview.jobs_now(ctx, 20)
    return aiohttp_jinja2.render_template(
        "dashboard.html",
        request,
        {
            "counts": counts,
            "online": overview.online(request),
            "store": store,
            "jobs": jobs,
            "failed_week": failed,
            "latest": latest,
            "day_chart": Markup(charts.stacked_bars(day, "Last 24 hours", label_every=4)),
            "week_chart": Markup(charts.stacked_bars(week, "Last 7 days")),
            "day_totals": (sum(b.from_seeder for b in day), sum(b.from_friends for b in day)),
            "week_totals": (sum(b.from_seeder for b in week), sum(b.from_friends for b in week)),
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/", dashboard)]
