"""The tracker's and the worker's settings: every MIST_* value they use, read once from the environment.

`Settings.from_env(data)` is the one place these services read `os.environ` (the command lines call it); a
wrong value stops the start with a message that names the variable. Everything below the command lines
takes a `Settings`, and tests build one instead of patching the environment. (The seeder's are its command
line's options and its plumbing's, seeder/settings.py; that plumbing's own few variables are
shared/service/settings.py, held here as `service`.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from shared.chunkstore import StoreSettings
from shared.environment import number as _number
from shared.errors import SettingsError as SettingsError  # a MIST_* variable the service cannot use
from shared.service.settings import ServiceSettings

DATABASE_ENV = "MIST_DATABASE_URL"  # default: SQLite in the data directory
REDIS_ENV = "MIST_REDIS_URL"  # default: a SQLite queue in the data directory
QUEUE_ENV = "MIST_QUEUE_NAME"
ADMIN_PASSWORD_ENV = "MIST_ADMIN_PASSWORD"  # the first start's admin password (default: made up and shown once)
ICE_ENV = "MIST_ICE_SERVERS"  # JSON, as WebRTC's iceServers: [{"urls": ["stun:host:3478"]}, {"urls": [...], "username": ..}]
SHARE_ENV = "MIST_SEEDER_SHARE"  # the seeder's share of a download while friends can carry it (0.05-1.0)
FLOOR_ENV = "MIST_PEER_FLOOR"  # bytes/s friends must carry together before the seeder holds back
GRACE_ENV = "MIST_GC_GRACE_SECONDS"  # how long an object no build needs is kept (tests use 0)
PATCH_WAIT_ENV = "MIST_NEWS_PATCH_WAIT"  # seconds the news waits for the build's patches
RETENTION_ENV = "MIST_ACTIVITY_DAYS"  # days the activity log keeps a row
STEAM_URL_ENV = "MIST_STEAM_URL"
STEAM_TIMEOUT_ENV = "MIST_STEAM_TIMEOUT"
DISCORD_ENV = "MIST_DISCORD_WEBHOOK_URL"  # the worker posts news there
PASSWORD_COST_ENV = "MIST_PASSWORD_HASH_COST"  # argon2's cost for passwords: "standard", or "cheapest" for tests

DEFAULT_SHARE = 0.2
DEFAULT_FLOOR = 3_000_000
GRACE_SECONDS = 24 * 3600
PATCH_WAIT = 60.0
DEFAULT_RETENTION_DAYS = 90.0
STEAM_URL = "https://store.steampowered.com"
STEAM_TIMEOUT = 10.0
# The argon2id costs a password hash may be made at (tracker/auth.py holds their parameters). "standard" is
# RFC 9106's low-memory profile (argon2-cffi's default); "cheapest" is the least argon2 allows, for test suites.
PASSWORD_COSTS = ("standard", "cheapest")


def _password_cost(env: Mapping[str, str]) -> str:
    raw = env.get(PASSWORD_COST_ENV, "").strip()
    if raw and raw not in PASSWORD_COSTS:
        raise SettingsError(
            f"{PASSWORD_COST_ENV} must be one of {', '.join(PASSWORD_COSTS)} (got {raw!r}); leave it unset for the standard cost"
        )
    return raw or PASSWORD_COSTS[0]


def parse_ice(raw: str) -> list[dict[str, Any]]:
    """MIST_ICE_SERVERS: the STUN/TURN servers clients should use; none when empty (LAN and loopback)."""
    if not raw.strip():
        return []
    try:
        servers = json.loads(raw)
    except ValueError:
        servers = None
    if not isinstance(servers, list) or not all(isinstance(s, dict) and isinstance(s.get("urls"), list) for s in servers):
        raise SettingsError(f'{ICE_ENV} must be a JSON list like [{{"urls": ["stun:host:3478"]}}]')
    return [
        {"urls": [str(u) for u in s["urls"]], "username": str(s.get("username", "")), "credential": str(s.get("credential", ""))}
        for s in servers
    ]


@dataclass
class Settings:
    """Where the tracker keeps things (every path defaults to inside `data`) and how it behaves."""

    data: Path
    database_url: str = ""  # "" for SQLite in `data`
    seeder_url: str = ""
    seeder_port: int = 0  # mist-server with seeder processes of their own: their port on the tracker's host
    public_url: str = ""  # where friends reach the tracker (tracker/public_url.py); "" if not known at start
    public_url_configured: bool = False  # set by the admin (MIST_PUBLIC_URL, --public-url), not worked out
    store: StoreSettings = field(default_factory=StoreSettings)  # MIST_STORE_URL: empty for `data/store`
    redis_url: str = ""  # "" for a SQLite queue in `data`
    queue_name: str = "mist"
    admin_password: str = ""  # "" makes one up on the first start, and shows it
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    seeder_share: float = DEFAULT_SHARE
    peer_floor: int = DEFAULT_FLOOR
    gc_grace: float = GRACE_SECONDS
    patch_wait: float = PATCH_WAIT
    activity_days: float = DEFAULT_RETENTION_DAYS
    steam_url: str = STEAM_URL
    steam_timeout: float = STEAM_TIMEOUT
    discord_webhook_url: str = ""
    password_hash_cost: str = PASSWORD_COSTS[0]
    service: ServiceSettings = field(default_factory=ServiceSettings)  # logs, /metrics, proxies, disk warning
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def from_env(cls, data: Path, env: Mapping[str, str] = os.environ, **given: Any) -> Settings:
        """The settings the environment gives, with `given` (the command line's options) over them."""
        known = {f.name for f in fields(cls)}
        wrong = set(given) - known
        if wrong:
            raise TypeError(f"no such setting: {', '.join(sorted(wrong))}")
        read: dict[str, Any] = {
            "database_url": env.get(DATABASE_ENV, "").strip(),
            "store": StoreSettings.from_env(env),
            "redis_url": env.get(REDIS_ENV, "").strip(),
            "queue_name": env.get(QUEUE_ENV, "").strip() or "mist",
            "admin_password": env.get(ADMIN_PASSWORD_ENV, ""),
            "ice_servers": parse_ice(env.get(ICE_ENV, "")),
            "seeder_share": _number(env, SHARE_ENV, DEFAULT_SHARE, "between 0.05 and 1.0", 0.05, 1.0),
            "peer_floor": int(_number(env, FLOOR_ENV, DEFAULT_FLOOR, "a number of bytes per second, 0 or more")),
            "gc_grace": _number(env, GRACE_ENV, GRACE_SECONDS, "a number of seconds, 0 or more"),
            "patch_wait": _number(env, PATCH_WAIT_ENV, PATCH_WAIT, "a number of seconds, 0 or more"),
            "activity_days": _number(
                env, RETENTION_ENV, DEFAULT_RETENTION_DAYS, "a number of days like 90, more than 0", above=True
            ),
            "steam_url": (env.get(STEAM_URL_ENV, "").strip() or STEAM_URL).rstrip("/"),
            "steam_timeout": _number(env, STEAM_TIMEOUT_ENV, STEAM_TIMEOUT, "a number of seconds, more than 0", above=True),
            "discord_webhook_url": env.get(DISCORD_ENV, "").strip(),
            "password_hash_cost": _password_cost(env),
            "service": ServiceSettings.from_env(env),
        }
        return cls(data=Path(data), **{**read, **given})

    @property
    def store_root(self) -> Path:
        return self.data / "store"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data / 'tracker.db'}"
