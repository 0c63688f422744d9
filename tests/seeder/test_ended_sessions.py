"""A standalone seeder's list of ended sessions: read from the tracker when stale, believed only when signed."""

from __future__ import annotations

from typing import Any

from shared.manifest import canonical_json
from shared.signing import Signer
from seeder.ended_sessions import FRESH_SECONDS, EndedSessions

TRACKER, STRANGER = Signer.generate(), Signer.generate()


def signed(sessions: list[str], by: Signer = TRACKER) -> dict[str, Any]:
    payload = canonical_json({"sessions": sessions, "at": 0})
    return {"payload": payload.decode(), "signature": by.sign(payload)}


class Tracker:
    """What the tracker answers, and how often it was asked."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | Exception = signed([])
        self.asked = 0

    async def __call__(self, url: str) -> dict[str, Any]:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_a_session_is_refused_once_the_signed_list_names_it_and_the_list_is_read_again_only_when_stale() -> None:
    tracker, now = Tracker(), [100.0]
    ended = EndedSessions("http://tracker", lambda: TRACKER.public_key, fetch=tracker, clock=lambda: now[0])
    assert not await ended("s1") and tracker.asked == 1
    tracker.answer = signed(["s1"])
    assert not await ended("s1") and tracker.asked == 1  # read a moment ago: no request per ticket
    now[0] += FRESH_SECONDS
    assert await ended("s1") and not await ended("s2") and tracker.asked == 2


async def test_an_unsigned_or_forged_list_or_a_dead_tracker_leaves_the_last_list_in_force() -> None:
    tracker, now = Tracker(), [100.0]
    tracker.answer = signed(["s1"])
    ended = EndedSessions("http://tracker", lambda: TRACKER.public_key, fetch=tracker, clock=lambda: now[0])
    assert await ended("s1")
    for answer in (signed([], by=STRANGER), {"payload": "{}", "signature": "x"}, OSError("connection refused")):
        tracker.answer = answer
        now[0] += FRESH_SECONDS
        assert await ended("s1"), answer
