"""Passwords (argon2id) and tokens (JWT access tokens, revocable refresh tokens).

Access tokens are short-lived and checked without the database; refresh
tokens are random, stored hashed, rotated on use and revocable.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import argon2
import jwt

from tracker.errors import Unauthorized

ACCESS_LIFETIME = 15 * 60
REFRESH_LIFETIME = 30 * 24 * 3600
# The costs tracker/settings.py names (MIST_PASSWORD_HASH_COST), as argon2id parameters.
COSTS = {"standard": argon2.profiles.RFC_9106_LOW_MEMORY, "cheapest": argon2.profiles.CHEAPEST}


class Passwords:
    """Password hashes at the cost the settings chose; a hash records its own parameters, so one made at another
    cost still verifies, and `needs_rehash` says to make it again at this cost at the next login."""

    def __init__(self, cost: str = "standard") -> None:
        self.cost = cost
        self._hasher = argon2.PasswordHasher.from_parameters(COSTS[cost])
        self._dummy = ""

    def __repr__(self) -> str:
        return f"Passwords(cost={self.cost!r})"

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def check(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)

    @property
    def dummy_hash(self) -> str:
        """A hash no password matches, at this cost: checked for unknown users, so timing hides which names exist.
        Made at first use, not at import, so a command that never checks a password never pays for it."""
        if not self._dummy:
            self._dummy = self.hash(secrets.token_urlsafe(16))
        return self._dummy


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the hash under which the database keeps it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, read from its access token."""

    user: str
    scope: str
    generation: int = 0  # of the account's sessions, when the token was issued (tracker/sessions.py)

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


def issue_access_token(secret: bytes, user: str, scope: str, now: float, generation: int = 0) -> str:
    claims = {"sub": user, "scope": scope, "gen": generation, "iat": int(now), "exp": int(now) + ACCESS_LIFETIME}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_access_token(secret: bytes, token: str, now: float) -> Identity:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "scope", "exp"], "verify_exp": False}
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("access token is invalid; log in again") from exc
    if claims["exp"] <= now:
        raise Unauthorized("access token has expired; refresh it or log in again")
    if claims["scope"] not in ("user", "admin"):
        raise Unauthorized("access token has an unknown scope; log in again")
    generation = claims.get("gen", 0)
    if type(generation) is not int:
        raise Unauthorized("access token is invalid; log in again")
    return Identity(str(claims["sub"]), str(claims["scope"]), generation)
