"""The admin's web site under /admin: server-rendered pages over the tracker's own data, one module per page.

site.py         the sub-application: templates, static files, security headers, HTML error pages
security.py     what the browser is told and checked for: cookies, CSRF, origin, caching
session.py      signing in and out, and who is looking (server-side sessions)
forms.py        reading a posted form, with an error beside each field
notices.py      the one-line notices a page shows after a form did its work
dashboard.py games.py users.py invitations.py activity_page.py jobs_page.py storage.py keys_page.py
                the pages
overview.py     figures several pages share: the store by kind, the jobs, friends online
game_figures.py a game's builds in figures: dedup, patches, the next version
live.py         Server-Sent Events for the parts that change by themselves (jobs, friends online)
charts.py       SVG charts drawn on the server (pure)
formatting.py   bytes and times as people read them (pure)
address.py      the tracker's address as friends should type it
"""

from tracker.admin.site import api_routes, make_admin_app

__all__ = ["api_routes", "make_admin_app"]
