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
_hasher = argon2.PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


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
