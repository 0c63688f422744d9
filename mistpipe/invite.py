"""`mistpipe invite`: a one-time link with which a friend picks the password of their new account."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from client.api import Api


async def invite(api: Api, name: str, days: int) -> dict[str, Any]:
    """Ask the tracker for an invitation link for account `name`, working for `days` days."""
    return await api.call("POST", "/api/invitations", json={"name": name, "days": days})


def invitation_text(made: dict[str, Any]) -> str:
    until = datetime.fromtimestamp(float(made["expires_at"]), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Send {made['name']} this link; it works once, until {until}:\n    {made['url']}\n"
        "They choose a password there and see how to get the app and sign in."
    )
