"""The one-time message a page comes with ("Signed in ...") goes to the page navigated to, never to a live refresh."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiohttp import web

from client.app import pages, server


async def test_a_live_refresh_leaves_the_message_for_the_page_it_was_meant_for(aiohttp_client: Any) -> None:
    async def signed_in(request: web.Request) -> web.Response:
        pages.flash(request, "Signed in. The server's key is ab:cd.")
        raise web.HTTPSeeOther("/page")

    async def page(request: web.Request) -> web.Response:
        return await pages.render(request, "error.html", message="a page")

    app = web.Application()
    pages.setup(app)
    stand_in = SimpleNamespace(account=lambda: SimpleNamespace(signed_in=False), downloads=SimpleNamespace(jobs=[]), notices=[])
    app[server.SERVICE] = stand_in  # type: ignore[misc]  # a stand-in: render reads only these three
    app.add_routes([web.post("/signin", signed_in), web.get("/page", page)])
    client = await aiohttp_client(app)

    answer = await client.post("/signin", allow_redirects=False)
    assert answer.status == 303
    refreshed = await client.get("/page", headers={pages.REFRESH_HEADER: "1"})  # the old page's refresh, first
    assert "Signed in" not in await refreshed.text()
    shown = await client.get("/page")  # then the navigation
    assert "Signed in. The server&#39;s key is ab:cd." in await shown.text()
    again = await client.get("/page")
    assert "Signed in" not in await again.text()  # once
