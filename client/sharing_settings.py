"""What a user lets friends take from them: caps on upload and download, how many friends at once, and when.

Parsing and validation are pure; `load` and `save` read and write one JSON
file at a path the caller chooses. Caps are totals over all friends, in bytes
per second; None means uncapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
import datetime
from datetime import time
from decimal import Decimal
from pathlib import Path

from shared.durable import write_atomic
from shared.errors import SettingsError as SettingsError  # malformed settings: the message says what to write

SETTINGS_FILE = "sharing.json"  # in MIST_HOME

RATE_FORMS = "a number of bytes per second like 500KB, 1.5MB/s, 750k, 2MiB or 64000, or 'unlimited'"
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*(?:/\s*s)?")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
WINDOW_FORM = "HH:MM-HH:MM up=RATE down=RATE (both keys optional), e.g. '23:00-07:00 up=unlimited down=5MB'"


@dataclass(frozen=True)
class Window:
    """Daily local times [start, end) when these caps replace the base ones; may wrap midnight (23:00-07:00)."""

    start: time
    end: time
    upload_cap: int | None = None
    download_cap: int | None = None

    def __post_init__(self) -> None:
        _need(
            self.start != self.end,
            f"a window must not start and end at the same time ({self.start:%H:%M}); for all day, set the base caps",
        )
        _check_caps(self)

    def covers(self, at: time) -> bool:
        if self.start < self.end:
            return self.start <= at < self.end
        return not self.end <= at < self.start  # wrapping midnight, it covers all but the gap before it starts


@dataclass(frozen=True)
class Sharing:
    """Defaults a friend on a home line accepts: 1 MB/s (8 Mbit/s) up leaves most uplinks room for their own
    game and calls; downloads are what they asked for, so uncapped; 8 friends at once keep each share useful."""

    enabled: bool = True
    upload_cap: int | None = 1_000_000
    download_cap: int | None = None
    max_peers: int = 8
    schedule: tuple[Window, ...] = ()

    def __post_init__(self) -> None:
        _check_caps(self)
        _need(isinstance(self.enabled, bool), f"enabled must be true or false (got {self.enabled!r})")
        _need(
            _whole(self.max_peers),
            f"max_peers must be a whole number of 1 or more (got {self.max_peers!r}); to share with nobody, turn sharing off",
        )


def caps_now(s: Sharing) -> tuple[int | None, int | None]:
    return caps_at(s, datetime.datetime.now().time())


def caps_at(s: Sharing, at: time) -> tuple[int | None, int | None]:
    """(upload cap, download cap) at local time `at`: the first window covering it, else the base caps."""
    rule: Window | Sharing = next((w for w in s.schedule if w.covers(at)), s)
    return rule.upload_cap, rule.download_cap


def parse_rate(text: str) -> int | None:
    """KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024, a bare number is bytes; 'unlimited' gives None."""
    low = text.strip().lower()
    if low in ("unlimited", "none", "off"):
        return None
    match = _RATE.fullmatch(low)
    if match is None or match[2] not in _UNITS:
        raise SettingsError(f"a rate must be {RATE_FORMS} (got {text!r})")
    n = int((Decimal(match[1]) * _UNITS[match[2]]).to_integral_value())
    _need(n >= 1, f"a rate must be at least 1 byte per second (got {text!r}); write 'unlimited' for no cap, or turn sharing off")
    return n


def format_rate(n: int | None) -> str:
    """A rate as `parse_rate` reads it back exactly: '1.5 MB/s', '999 B/s', 'unlimited'."""
    if n is None:
        return "unlimited"
    for unit, scale in (("GB", 9), ("MB", 6), ("KB", 3)):
        if n >= 10**scale:
            return f"{Decimal(n).scaleb(-scale).normalize():f} {unit}/s"
    return f"{n} B/s"


def parse_window(text: str) -> Window:
    """Read '23:00-07:00 up=2MB down=unlimited'; a key left out is uncapped in the window, not the base cap."""
    span, *pairs = text.split() or [""]
    times = span.split("-")
    _need(len(times) == 2, f"a window must be {WINDOW_FORM} (got {text!r})")
    caps: dict[str, int | None] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        _need(
            key in ("up", "down") and sep == "=",
            f"a window's caps are up=RATE and down=RATE, written without spaces (got {pair!r} in {text!r})",
        )
        _need(key not in caps, f"a window sets {key}= once (got it twice in {text!r})")
        caps[key] = parse_rate(value)
    return Window(_clock(times[0]), _clock(times[1]), caps.get("up"), caps.get("down"))


def to_json(s: Sharing) -> dict[str, object]:
    windows = [
        {"start": f"{w.start:%H:%M}", "end": f"{w.end:%H:%M}", "upload_cap": w.upload_cap, "download_cap": w.download_cap}
        for w in s.schedule
    ]
    return {
        "enabled": s.enabled,
        "upload_cap": s.upload_cap,
        "download_cap": s.download_cap,
        "max_peers": s.max_peers,
        "schedule": windows,
    }


def from_json(obj: object) -> Sharing:
    """Keys left out take their defaults; unknown keys are refused, so a misspelt cap is never silently ignored."""
    fields = _fields(obj, "the sharing settings", ("enabled", "upload_cap", "download_cap", "max_peers", "schedule"))
    schedule = fields.get("schedule", [])
    _need(isinstance(schedule, list), f"schedule must be a list of windows (got {schedule!r})")
    fields["schedule"] = tuple(_window(w) for w in schedule)  # type: ignore[attr-defined]  # a list, checked just above
    return Sharing(**fields)  # type: ignore[arg-type]  # __post_init__ checks every other value


def load_settings(home: Path) -> Sharing:
    """This MIST_HOME's sharing settings (the defaults when none were saved)."""
    return load(home / SETTINGS_FILE)


def load(path: Path) -> Sharing:
    """The settings saved at `path`, or the defaults if there are none yet."""
    try:
        return from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return Sharing()
    except (ValueError, RecursionError, SettingsError) as exc:  # bad JSON or UTF-8 are ValueErrors; `[[[[...` recurses
        raise SettingsError(
            f"the sharing settings in {path} are unreadable ({exc}); fix the file, or delete it to go back to the defaults"
        ) from exc


def save(path: Path, s: Sharing) -> None:
    """Replace the file whole, so a crash leaves the old settings or the new ones, never half of each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(to_json(s), indent=2) + "\n").encode())


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise SettingsError(message)


def _whole(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1  # JSON true is not a number of bytes


def _check_caps(values: Window | Sharing) -> None:
    for name in ("upload_cap", "download_cap"):
        cap = getattr(values, name)
        _need(
            cap is None or _whole(cap),
            f"{name} must be a whole number of bytes per second of 1 or more, or null for uncapped (got {cap!r})",
        )


def _clock(text: object) -> time:
    match = _CLOCK.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SettingsError(f'a time of day must be "HH:MM" on a 24-hour clock, like 07:00 or 23:30 (got {text!r})')
    return time(int(match[1]), int(match[2]))


def _fields(obj: object, what: str, known: tuple[str, ...]) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise SettingsError(f"{what} must be a JSON object (got {type(obj).__name__})")
    unknown = ", ".join(repr(key) for key in sorted(set(obj) - set(known)))
    _need(not unknown, f"unknown key {unknown} in {what}; the keys are {', '.join(known)}")
    return dict(obj)


def _window(obj: object) -> Window:
    fields = _fields(obj, "a schedule window", ("start", "end", "upload_cap", "download_cap"))
    return Window(_clock(fields.get("start")), _clock(fields.get("end")), fields.get("upload_cap"), fields.get("download_cap"))  # type: ignore[arg-type]  # Window.__post_init__ checks them
