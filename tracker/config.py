"""The tracker's settings and the on-disk layout of its data directory."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shared.chunkstore import DirectoryChunkStore
from shared.signing import Signer
from tracker.db.engine import Database, database_url, migrate, open_engine
from tracker.jobs import Jobs, open_jobs
from tracker.throttle import Throttle


@dataclass
class Settings:
    """Where the tracker keeps things; every path defaults to inside `data`."""

    data: Path
    database_url: str = ""
    seeder_url: str = ""
    seeder_port: int = 0  # mist-server with seeder processes of their own: their port on the tracker's host
    clock: Callable[[], float] = field(default=time.time)

    @property
    def store_root(self) -> Path:
        return self.data / "store"

    @property
    def signing_key_path(self) -> Path:
        return self.data / "signing.key"

    def resolved_database_url(self) -> str:
        return database_url(self.data, self.database_url)


def load_secret(path: Path) -> bytes:
    """A random secret kept in the data directory (mode 0600), created on first start."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    secret = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


@dataclass
class TrackerContext:
    """Everything a tracker handler needs, built once at start-up."""

    settings: Settings
    db: Database
    signer: Signer
    store: DirectoryChunkStore
    jwt_secret: bytes
    jobs: Jobs
    throttle: Throttle = field(default_factory=Throttle)
    # (source, target) file contents whose HDiffPatch patch a queued job is making -> that job's id
    patch_jobs: dict[tuple[str, str], str] = field(default_factory=dict)
    # (source, target) whose quick patch a plan request is making now -> done when its row is recorded
    quick_patches: dict[tuple[str, str], "asyncio.Future[None]"] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TrackerContext(data={str(self.settings.data)!r}, db={self.db!r})"

    @property
    def now(self) -> float:
        return self.settings.clock()

    @classmethod
    def open(cls, settings: Settings) -> "TrackerContext":
        settings.data.mkdir(parents=True, exist_ok=True)
        engine = open_engine(settings.resolved_database_url())
        migrate(engine)
        return cls(
            settings=settings,
            db=Database(engine),
            signer=Signer.load_or_create(settings.signing_key_path),
            store=DirectoryChunkStore(settings.store_root),
            jwt_secret=load_secret(settings.data / "jwt.secret"),
            jobs=open_jobs(settings.data),
        )
