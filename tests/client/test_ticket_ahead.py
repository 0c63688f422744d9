"""The seeder ticket an install asks for while it plans (client/installer.py `_first`): used when it came, asked
again when it failed (as it was asked before it went ahead), and never cancelled for every caller by one."""

from __future__ import annotations

import asyncio

import pytest

from client.errors import TrackerUnavailable
from client.installer import _first, _forget
from client.sources import Seeder


async def _ticket() -> str:
    return "ticket"


FIRST, SECOND = Seeder("http://first", _ticket), Seeder("http://second", _ticket)


async def test_the_ticket_asked_ahead_is_used_and_not_asked_again() -> None:
    asked: list[str] = []

    async def again() -> Seeder:
        asked.append("again")
        return SECOND

    ahead = asyncio.ensure_future(asyncio.sleep(0, FIRST))
    assert await _first(ahead, again) is FIRST and await _first(ahead, again) is FIRST
    assert asked == []


async def test_a_ticket_that_failed_ahead_is_asked_again_and_other_errors_stand() -> None:
    async def refused() -> Seeder:
        raise TrackerUnavailable("cannot reach the tracker")

    async def again() -> Seeder:
        return SECOND

    ahead = asyncio.ensure_future(refused())
    assert await _first(ahead, again) is SECOND
    _forget(ahead)  # its error was seen: nothing left to report

    async def broken() -> Seeder:
        raise RuntimeError("a bug, not a refusal")

    with pytest.raises(RuntimeError):
        await _first(asyncio.ensure_future(broken()), again)


async def test_a_caller_cancelled_while_waiting_leaves_the_ticket_to_the_others() -> None:
    release = asyncio.Event()

    async def slow() -> Seeder:
        await release.wait()
        return FIRST

    async def again() -> Seeder:
        return SECOND

    ahead = asyncio.ensure_future(slow())
    gone = asyncio.ensure_future(_first(ahead, again))
    stays = asyncio.ensure_future(_first(ahead, again))
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await stays is FIRST and not ahead.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_ticket_nobody_used_is_stopped() -> None:
    async def never() -> Seeder:
        await asyncio.Event().wait()
        return FIRST

    ahead = asyncio.ensure_future(never())
    await asyncio.sleep(0)
    _forget(ahead)
    with pytest.raises(asyncio.CancelledError):
        await ahead
