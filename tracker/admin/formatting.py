"""How numbers and times read on the admin pages (pure; registered as Jinja filters)."""

from __future__ import annotations

from datetime import datetime, timezone


def human_bytes(n: float | None) -> str:
    """A byte count for people: 1.5 MB, 320 KB (powers of 1000, as the command line prints them)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def when(seconds: float | None) -> str:
    """Unix seconds as UTC, to the minute."""
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def when_dt(moment: datetime | None) -> str:
    """A naive UTC datetime from the database, to the minute."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def ago(seconds: float | None, now: float) -> str:
    """How long ago, roughly: 'just now', '5 min ago', '3 h ago', '2 days ago'."""
    if not seconds:
        return "never"
    gone = max(0.0, now - seconds)
    if gone < 60:
        return "just now"
    if gone < 3600:
        return f"{int(gone // 60)} min ago"
    if gone < 86400:
        return f"{int(gone // 3600)} h ago"
    days = int(gone // 86400)
    return f"{days} day{'s' if days != 1 else ''} ago"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"
