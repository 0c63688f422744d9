"""The tracker's context: its settings (tracker/settings.py) and everything opened from them at start-up."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.chunkstore import ChunkStore
from shared.handover import Handover
from shared.signing import Signer
from tracker import datalock, keys
from tracker.auth import Passwords
from tracker.backups import unfinished_restore
from tracker.datalock import DataInUse
from tracker.db.engine import Database, migrate, open_engine
from tracker.errors import TrackerError
from tracker.jobs.queue import Jobs, open_jobs
from tracker.keys import KeyFilesError
from tracker.manifest_deltas import DeltaCache
from tracker.private_data import make_private
from tracker.sessions import Sessions
from tracker.settings import Settings
from tracker.throttle import Throttle

# Present while `mist-admin restore` fills a data directory: a server started on half a restore would make new keys.


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
    store: ChunkStore
    jwt_secret: bytes
    jobs: Jobs
    sessions: Sessions
    passwords: Passwords  # argon2 at the settings' cost (MIST_PASSWORD_HASH_COST)
    handovers: tuple[Handover, ...] = ()  # shown to clients pinned to an older key (GET /api/info)
    throttle: Throttle = field(default_factory=Throttle)
    # (source, target) file contents whose HDiffPatch patch a queued job is making -> that job's id
    patch_jobs: dict[tuple[str, str], str] = field(default_factory=dict)
    # (source, target) whose quick patch a plan request is making now -> done when its row is recorded
    quick_patches: dict[tuple[str, str], "asyncio.Future[None]"] = field(default_factory=dict)
    # manifests sent as deltas from one a friend holds (tracker/manifest_deltas.py)
    manifest_deltas: DeltaCache = field(default_factory=DeltaCache)

    def __repr__(self) -> str:
        return f"TrackerContext(data={str(self.settings.data)!r}, db={self.db!r})"

    @property
    def now(self) -> float:
        return self.settings.clock()

    @classmethod
    def open(cls, settings: Settings) -> "TrackerContext":
        unfinished = unfinished_restore.refusal(settings.data, "start the server")
        if unfinished:
            raise TrackerError(unfinished)
        settings.data.mkdir(parents=True, exist_ok=True)
        signing = keys.load(settings.data)
        engine = open_engine(settings.resolved_database_url())
        migrate(engine)
        db = Database(engine)
        secret = load_secret(settings.data / "jwt.secret")
        return cls(
            settings=settings,
            db=db,
            signer=signing.signer,
            handovers=signing.handovers,
            store=settings.store.open(settings.store_root),
            jwt_secret=secret,
            jobs=open_jobs(settings),
            sessions=Sessions(db, secret, settings.clock),
            passwords=Passwords(settings.password_hash_cost),
        )


def open_locked(settings: Settings) -> TrackerContext:
    """For the serving commands: hold the data directory for this process, then open it.

    The lock keeps `mist-admin rotate-key` from changing the key under a
    running tracker; a key or database the tracker cannot start from becomes
    a one-line error that says what to do.
    """
    make_private(settings.data)  # before anything is written in it
    try:
        datalock.hold(settings.data, "start the tracker")
        return TrackerContext.open(settings)
    except (DataInUse, KeyFilesError) as exc:
        raise SystemExit(f"Error: {exc}") from None
