"""The keys page: the signing key's fingerprint, the hand-overs from older keys, and how to rotate."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from shared.signing import fingerprint
from tracker.routes.web import CONTEXT


async def page(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    handovers = [
        {"old": fingerprint(h.old), "new": fingerprint(h.new), "issued_at": h.issued_at} for h in reversed(ctx.handovers)
    ]
    return aiohttp_jinja2.render_template(
        "keys.html",
        request,
        {
            "fingerprint": fingerprint(ctx.signer.public_key),
            "public_key": ctx.signer.public_key,
            "handovers": handovers,
            "data": str(ctx.settings.data),
        },
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/keys", page)]
