"""Reading MIST_* variables at a program's start: numbers and the log format, refused with a SettingsError
(shared/errors.py) that names the variable.

Each program reads its environment once, at its edge (`from_env()` of its settings object), and passes
the values down; these helpers keep the messages alike everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.errors import SettingsError


FORMAT_ENV = "MIST_LOG_FORMAT"  # every program's log: `json` or `text` (shared/logs.py writes them)
FORMATS = ("json", "text")


def number(
    env: Mapping[str, str],
    name: str,
    default: float,
    what: str,
    least: float = 0.0,
    most: float = float("inf"),
    above: bool = False,
) -> float:
    """The number `name` holds (`default` when unset), refused with `what` it must be when out of range."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > least if above else value >= least) or not value <= most:
        raise SettingsError(f"{name} must be {what} (got {raw!r})")
    return value


def whole_number(env: Mapping[str, str], name: str, default: int, what: str) -> int:
    """A count of bytes or the like: digits only (`1e9` and `1.5` are refused, not rounded)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what} (got {raw!r})") from None


def log_format(env: Mapping[str, str]) -> str:
    """MIST_LOG_FORMAT as given (`json` or `text`), or "" when unset: each program has its own default.
    (Here, not in shared/logs.py: `mist` reads it at every start, and `logging` costs a command 7 ms.)"""
    chosen = env.get(FORMAT_ENV, "").strip().lower()
    if chosen and chosen not in FORMATS:
        raise SettingsError(f"{FORMAT_ENV} must be 'json' or 'text' (got {chosen!r})")
    return chosen
