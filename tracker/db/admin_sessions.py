"""Browser sessions of the admin site, kept server-side so signing out, a disable or a new password ends them.

A session is valid while it has not expired, its account exists, is an admin, is not disabled, and has the
password it was opened with (`stamp`, a hash of the stored password hash): so a password reset ends it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.db.models import AdminSession, User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRow:
    user: str
    csrf: str
    is_admin: bool
    usable: bool  # the account still exists enabled, with the password the session was opened with
    expires_at: float


def open_session(session: Session, user: str, token: str, csrf: str, now: float, expires_at: float) -> None:
    row = session.execute(select(User.id, User.password_hash).where(User.name == user)).first()
    if row is None:
        raise LookupError(user)
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))  # the table stays small
    session.add(AdminSession(token_hash=_hash(token), user_id=row[0], csrf=csrf, stamp=stamp(row[1]),
                             created_at=now, expires_at=expires_at))


def read(session: Session, token: str, now: float) -> SessionRow | None:
    """The session behind a cookie, or None if unknown or expired."""
    row = session.execute(
        select(AdminSession, User).join(User, AdminSession.user_id == User.id).where(AdminSession.token_hash == _hash(token))
    ).first()
    if row is None:
        return None
    found, user = row
    if found.expires_at <= now:
        return None
    usable = not user.disabled and found.stamp == stamp(user.password_hash)
    return SessionRow(user.name, found.csrf, user.is_admin, usable, found.expires_at)


def close(session: Session, token: str) -> None:
    session.execute(delete(AdminSession).where(AdminSession.token_hash == _hash(token)))
