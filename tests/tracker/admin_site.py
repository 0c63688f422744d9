"""Test helpers for the admin site: signing in through its form, and reading a page's CSRF token."""

from __future__ import annotations

import re

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FIELD_ERROR = re.compile(r'class="field-error"[^>]*>([^<]+)<')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(client, user: str, password: str) -> tuple[str, str]:
    """Sign in through the form; (the session cookie's value, the session's CSRF token). The client's cookie jar
    is emptied afterwards, so every later request says itself which cookie it sends."""
    client.session.cookie_jar.clear()
    form = await client.get("/admin/login")
    token = csrf_of(await form.text())
    answer = await client.post("/admin/login", data={"csrf": token, "user": user, "password": password, "next": "/admin/"},
                               allow_redirects=False)
    assert answer.status == 303, await answer.text()
    cookie = answer.cookies["mist_admin"].value
    page = await client.get("/admin/", headers={"Cookie": f"mist_admin={cookie}"}, allow_redirects=False)
    csrf = csrf_of(await page.text())
    client.session.cookie_jar.clear()
    return cookie, csrf
