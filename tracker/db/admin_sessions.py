"""Browser sessions of the admin site, kept server-side so that signing out ends one at once.

A session records the account's session generation when it was opened (tracker/sessions.py): disabling the
account, setting its password or changing its rights moves the generation on, which ends the session too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tracker.db.models import AdminSession, User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRow:
    user: str
    csrf: str
    generation: int
    expires_at: float


def open_session(session: Session, user: str, token: str, csrf: str, now: float, expires_at: float) -> None:
    row = session.execute(select(User.id, User.generation).where(User.name == user)).first()
    if row is None:
        raise LookupError(user)
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))  # the table stays small
    session.add(
        AdminSession(token_hash=_hash(token), user_id=row[0], csrf=csrf, generation=row[1], created_at=now, expires_at=expires_at)
    )


def read(session: Session, token: str, now: float) -> SessionRow | None:
    """The session behind a cookie, or None if unknown or expired."""
    row = session.execute(
        select(AdminSession, User.name).join(User, AdminSession.user_id == User.id).where(AdminSession.token_hash == _hash(token))
    ).first()
    if row is None or row[0].expires_at <= now:
        return None
    found, name = row
    return SessionRow(name, found.csrf, found.generation, found.expires_at)


def close(session: Session, token: str) -> None:
    session.execute(delete(AdminSession).where(AdminSession.token_hash == _hash(token)))
