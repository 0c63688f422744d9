"""Invitations: one-time, expiring links with which a friend picks the password of a new account."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tracker.db.models import Invitation, User
from tracker.db.queries import add_user
from tracker.errors import Conflict, NotFound


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class InvitationRow:
    id: int
    name: str
    created_by: str
    created_at: float
    expires_at: float
    used_at: float | None

    def state(self, now: float) -> str:
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= now else "open"


def _row(i: Invitation) -> InvitationRow:
    return InvitationRow(i.id, i.name, i.created_by, i.created_at, i.expires_at, i.used_at)


def create(session: Session, name: str, token: str, created_by: str, now: float, expires_at: float) -> InvitationRow:
    """A new invitation for account `name`, which must not exist yet (nor be promised by another open link)."""
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"there is already an account {name!r}; reset its password instead, or invite another name")
    promised = session.scalar(
        select(Invitation.id).where(Invitation.name == name, Invitation.used_at.is_(None), Invitation.expires_at > now)
    )
    if promised is not None:
        raise Conflict(f"an open invitation for {name!r} exists already; withdraw it first to make a new link")
    invitation = Invitation(
        token_hash=token_hash(token), name=name, created_by=created_by, created_at=now, expires_at=expires_at, used_at=None
    )
    session.add(invitation)
    session.flush()
    return _row(invitation)


def find(session: Session, token: str, now: float) -> InvitationRow:
    """The open invitation behind this link, or NotFound saying why the link no longer works."""
    found = session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))
    if found is None:
        raise NotFound("this invitation link is not known here; ask the admin for a new one")
    if found.used_at is not None:
        raise NotFound(
            "this invitation link was used already; sign in with the password chosen then, or ask the admin to reset it"
        )
    if found.expires_at <= now:
        raise NotFound("this invitation link has expired; ask the admin for a new one")
    return _row(found)


def accept(session: Session, token: str, password_hash: str, now: float) -> str:
    """Create the invited account with this password and use up the link, in one transaction; its name."""
    invitation = find(session, token, now)
    used = session.execute(
        update(Invitation).where(Invitation.id == invitation.id, Invitation.used_at.is_(None)).values(used_at=now)
    )
    if not getattr(used, "rowcount", 1):
        raise NotFound("this invitation link was used a moment ago; ask the admin for a new one")
    add_user(session, invitation.name, password_hash, False)
    return invitation.name


def withdraw(session: Session, invitation_id: int, now: float) -> None:
    """End an open invitation at once (its link stops working)."""
    found = session.get(Invitation, invitation_id)
    if found is None:
        raise NotFound(f"no invitation {invitation_id}")
    if found.used_at is None and found.expires_at > now:
        found.expires_at = now


def listing(session: Session, limit: int = 50) -> list[InvitationRow]:
    rows = session.scalars(select(Invitation).order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(limit))
    return [_row(i) for i in rows]
