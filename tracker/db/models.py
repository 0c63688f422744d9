"""Tables of the tracker. The migration in migrations/versions creates exactly these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Raised whenever the account's sessions must end (disabled, new password, admin rights changed): access
    # tokens and tickets name the generation they were issued under, and an older one is refused.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    generation_changed_at: Mapped[float] = mapped_column(Float, default=0.0)  # unix seconds


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Game(Base):
    __tablename__ = "games"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    description: Mapped[str] = mapped_column(Text, default="")
    header_image: Mapped[str] = mapped_column(String(500), default="")
    steam_app_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    overrides: Mapped[str] = mapped_column(String(200), default="")  # fields the admin set by hand, comma-separated
    steam_synced_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    steam_error: Mapped[str] = mapped_column(String(500), default="")
    launch: Mapped[str] = mapped_column(String(500), default="")  # how to start it; a build may say otherwise


class Grant(Base):
    """A user may see and fetch a private game."""

    __tablename__ = "grants"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    game_id: Mapped[int] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), primary_key=True)


class Build(Base):
    __tablename__ = "builds"
    __table_args__ = (UniqueConstraint("game_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    game_id: Mapped[int] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    manifest_digest: Mapped[str] = mapped_column(String(64), index=True)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(String(128))
    total_size: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer)
    stored_size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    notes: Mapped[str] = mapped_column(Text, default="")  # the admin's release notes
    launch: Mapped[str] = mapped_column(String(500), default="")  # empty: the game's launch command
    news_status: Mapped[str] = mapped_column(String(500), default="")  # the Discord post: "", posted, or why not


class Patch(Base):
    """A binary delta between two file contents; without an object when chunks were cheaper (so it is not retried)."""

    __tablename__ = "patches"
    __table_args__ = (UniqueConstraint("source_sha", "target_sha", "algorithm"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_sha: Mapped[str] = mapped_column(String(64))
    target_sha: Mapped[str] = mapped_column(String(64), index=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    object_sha: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    object_size: Mapped[int] = mapped_column(BigInteger)
    stored_size: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Install(Base):
    """The build a friend last told the tracker they hold, so patches are made from what people actually have."""

    __tablename__ = "installs"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    game_id: Mapped[int] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime)


class PeerReport(Base):
    """A friend's client said this peer sent it a chunk that failed its hash.

    Names and the digest rather than foreign keys: the report stays readable after its build is removed.
    """

    __tablename__ = "peer_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reported_at: Mapped[float] = mapped_column(Float)  # unix seconds, from the tracker's injectable clock
    reporter: Mapped[str] = mapped_column(String(64))
    peer_user: Mapped[str] = mapped_column(String(64), index=True)
    build_digest: Mapped[str] = mapped_column(String(64))
    game: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))


class Activity(Base):
    """One thing that happened, for the admin site's activity log; names rather than keys, so it outlives its rows."""

    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # unix seconds, from the tracker's injectable clock
    kind: Mapped[str] = mapped_column(String(32))
    user: Mapped[str] = mapped_column(String(64), default="", index=True)
    game: Mapped[str] = mapped_column(String(64), default="", index=True)
    version: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    bytes_from_peers: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_from_seeder: Mapped[int] = mapped_column(BigInteger, default=0)


class Invitation(Base):
    """A one-time link the admin gave a friend: whoever opens it first picks the password of account `name`."""

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AdminSession(Base):
    """A browser signed in to the admin site, under the account's session generation of that moment."""

    __tablename__ = "admin_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class JobRecord(Base):
    """What the worker did with one background job: when, with what arguments (to retry it), and how it ended."""

    __tablename__ = "job_log"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # huey's task id
    task: Mapped[str] = mapped_column(String(32), index=True)
    args: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of the task's arguments
    state: Mapped[str] = mapped_column(String(16), index=True)  # running, done, failed
    error: Mapped[str] = mapped_column(String(1000), default="")
    result: Mapped[str] = mapped_column(Text, default="")  # JSON
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    retry_of: Mapped[str] = mapped_column(String(64), default="")


class PendingNews(Base):
    """A published build a friend's daemon has not heard of yet (one per friend and game: the newest build).

    Kept until the daemon says it heard it, so a friend offline at the push hears it when next online.
    `ready` turns true once the build's patches are made (or waited for long enough), so its size counts them.
    """

    __tablename__ = "pending_news"
    __table_args__ = (UniqueConstraint("user_id", "game_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    game_id: Mapped[int] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"))
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)  # unix seconds, from the tracker's injectable clock
    ready: Mapped[bool] = mapped_column(Boolean, default=False)
