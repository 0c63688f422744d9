"""Key hand-overs: the tracker's old signing key vouching for its new one, so pinned clients can follow a rotation.

A hand-over is the canonical JSON statement
`{"kind": "mist-key-handover", "old": K1, "new": K2, "issued_at": T}` signed
by K1. The tracker serves every hand-over since its chain began, oldest first;
a client pinned to K1 walks from K1 to the tracker's current key, checking
each statement with the key it trusts at that step, and re-pins only if the
walk arrives. Nothing here does I/O: statements in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import KeyHandoverError, SignatureError
from shared.manifest import canonical_json
from shared.signing import KEY_SIZE, Signer, b64d, fingerprint, verify

KIND = "mist-key-handover"
MAX_CHAIN = 1000  # one per rotation; a longer list is not a tracker's chain


@dataclass(frozen=True)
class Handover:
    """`old` hands signing over to `new` at `issued_at` (Unix seconds); `signature` is old's."""

    old: str
    new: str
    issued_at: int
    signature: str

    def __repr__(self) -> str:
        return f"Handover({fingerprint(self.old)} -> {fingerprint(self.new)}, issued_at={self.issued_at})"

    @classmethod
    def sign(cls, old: Signer, new: str, issued_at: int) -> "Handover":
        return cls(old.public_key, new, issued_at, old.sign(statement(old.public_key, new, issued_at)))

    def check(self) -> None:
        """Raise KeyHandoverError unless `old` signed this statement."""
        try:
            verify(self.old, statement(self.old, self.new, self.issued_at), self.signature)
        except SignatureError as exc:
            raise KeyHandoverError(
                f"the hand-over from {fingerprint(self.old)} to {fingerprint(self.new)} is not signed by {fingerprint(self.old)}"
            ) from exc

    def to_json(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "issued_at": self.issued_at, "signature": self.signature}

    @classmethod
    def from_json(cls, obj: object) -> "Handover":
        """Strictly: exactly these four fields, two well-formed keys, an integer time."""
        if not isinstance(obj, dict) or set(obj) != {"old", "new", "issued_at", "signature"}:
            raise KeyHandoverError("a key hand-over must have exactly old, new, issued_at and signature")
        old, new, issued_at, signature = obj["old"], obj["new"], obj["issued_at"], obj["signature"]
        if not all(isinstance(v, str) for v in (old, new, signature)) or type(issued_at) is not int:
            raise KeyHandoverError("a key hand-over's keys and signature are text and its issued_at an integer")
        for key in (old, new):
            _check_key(key)
        if old == new:
            raise KeyHandoverError("a key hand-over must name two different keys")
        return cls(old, new, issued_at, signature)


def statement(old: str, new: str, issued_at: int) -> bytes:
    """The bytes the old key signs; `kind` keeps them from ever meaning anything else (a ticket, a manifest)."""
    return canonical_json({"kind": KIND, "old": old, "new": new, "issued_at": issued_at})


def parse_chain(items: object) -> list[Handover]:
    if not isinstance(items, list):
        raise KeyHandoverError("the tracker's key hand-overs must be a list")
    if len(items) > MAX_CHAIN:
        raise KeyHandoverError(f"the tracker sent {len(items)} key hand-overs; more than {MAX_CHAIN} is not a real chain")
    return [Handover.from_json(item) for item in items]


def follow(pinned: str, current: str, chain: Sequence[Handover]) -> list[Handover]:
    """The hand-overs leading from the pinned key to the tracker's current one, each checked.

    Raise KeyHandoverError when there is no such path: no statement from the
    pinned key, a gap, a bad signature, two statements from one key (a fork),
    a key that comes back (a loop, or an old statement replayed), or times
    that do not move forward.
    """
    if pinned == current:
        return []
    if len(chain) > MAX_CHAIN:
        raise KeyHandoverError(f"more than {MAX_CHAIN} key hand-overs is not a real chain")
    by_old: dict[str, Handover] = {}
    for h in chain:
        if h.old in by_old and by_old[h.old] != h:
            raise KeyHandoverError(f"the tracker shows two different hand-overs from {fingerprint(h.old)}")
        by_old[h.old] = h
    path: list[Handover] = []
    seen = {pinned}
    key = pinned
    while key != current:
        step = by_old.get(key)
        if step is None:
            if key == pinned:
                raise KeyHandoverError(f"no hand-over from the key you trusted ({fingerprint(pinned)})")
            raise KeyHandoverError(
                f"the hand-overs from the key you trusted stop at {fingerprint(key)}, short of {fingerprint(current)}"
            )
        step.check()
        if step.new in seen:
            raise KeyHandoverError(f"the hand-overs come back to {fingerprint(step.new)}; a retired key is never trusted again")
        if path and step.issued_at <= path[-1].issued_at:
            raise KeyHandoverError(f"the hand-over from {fingerprint(step.old)} is older than the one before it")
        seen.add(step.new)
        path.append(step)
        key = step.new
    return path


def chain_ends_at(chain: Sequence[Handover], key: str) -> bool:
    """Whether the chain leads to `key` (or is empty): one that does not is stale, and helps no client."""
    return not chain or chain[-1].new == key


def _check_key(key: str) -> None:
    try:
        raw = b64d(key)
    except SignatureError as exc:
        raise KeyHandoverError("a key hand-over names a key that is not base64url") from exc
    if len(raw) != KEY_SIZE:
        raise KeyHandoverError(f"a key hand-over names a key of {len(raw)} bytes; Ed25519 keys have {KEY_SIZE}")
