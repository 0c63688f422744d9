"""A seeder started with --tracker-url follows the tracker to a new key along signed hand-overs, and only so."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from seeder.app import SeederContext, make_app
from seeder.tracker_key import RECHECK_AFTER, KeyFollower
from shared import pack
from shared.chunkstore import DirectoryChunkStore
from shared.handover import Handover
from shared.signing import Signer
from shared.tickets import UPLOAD, Ticket
from tests.clock import Clock

OLD, NEW = Signer.generate(), Signer.generate()
HANDED_OVER = {"public_key": NEW.public_key, "key_handovers": [Handover.sign(OLD, NEW.public_key, 1).to_json()]}


class FakeTracker:
    """What /api/info answers (or raises), and how often it was asked."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.asked = 0

    async def __call__(self, url: str) -> dict[str, Any]:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer



async def test_a_signed_hand_over_moves_the_seeder_to_the_new_key(caplog) -> None:
    tracker = FakeTracker(HANDED_OVER)
    follower = KeyFollower("http://tracker", OLD.public_key, fetch=tracker, clock=Clock(100.0))
    with caplog.at_level(logging.INFO, logger="mist.seeder"):
        assert await follower(OLD.public_key) == NEW.public_key
    assert follower.public_key == NEW.public_key and "was rotated; now trusting" in caplog.text
    assert await follower(OLD.public_key) == NEW.public_key  # a request that failed with the old key: no second ask
    assert tracker.asked == 1


@pytest.mark.parametrize("answer", [
    {"public_key": NEW.public_key, "key_handovers": []},  # the key file replaced, no hand-over
    {"public_key": NEW.public_key, "key_handovers": [Handover.sign(NEW, NEW.public_key, 1).to_json()]},  # garbage
    {"public_key": NEW.public_key, "key_handovers": [Handover(OLD.public_key, NEW.public_key, 1, NEW.sign(b"x")).to_json()]},
])
async def test_a_new_key_without_a_valid_hand_over_is_not_trusted(answer, caplog) -> None:
    follower = KeyFollower("http://tracker", OLD.public_key, fetch=FakeTracker(answer), clock=Clock(100.0))
    with caplog.at_level(logging.ERROR, logger="mist.seeder"):
        assert await follower(OLD.public_key) == OLD.public_key
    assert "restart mist-seeder" in caplog.text


async def test_forged_tickets_ask_the_tracker_at_most_once_per_interval() -> None:
    tracker, clock = FakeTracker({"public_key": OLD.public_key, "key_handovers": []}), Clock(100.0)
    follower = KeyFollower("http://tracker", OLD.public_key, fetch=tracker, clock=clock)
    for _ in range(5):
        assert await follower(OLD.public_key) == OLD.public_key
    assert tracker.asked == 1
    clock.now += RECHECK_AFTER
    await follower(OLD.public_key)
    assert tracker.asked == 2


async def test_an_unreachable_tracker_keeps_the_key(caplog) -> None:
    follower = KeyFollower("http://tracker", OLD.public_key, fetch=FakeTracker(OSError("refused")), clock=Clock(100.0))
    with caplog.at_level(logging.WARNING, logger="mist.seeder"):
        assert await follower(OLD.public_key) == OLD.public_key
    assert "could not be asked" in caplog.text


async def test_the_seeder_accepts_a_ticket_of_the_new_key_once_it_followed(tmp_path, aiohttp_client) -> None:
    tracker = FakeTracker(HANDED_OVER)
    follower = KeyFollower("http://tracker", OLD.public_key, fetch=tracker, clock=Clock(100.0))
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    client = await aiohttp_client(make_app(SeederContext(store, OLD.public_key, follow_key=follower)))
    body = pack.encode_hashes(["ab" * 32])

    def upload_ticket(signer: Signer) -> dict[str, str]:
        return {"Authorization": f"Ticket {Ticket('admin', UPLOAD, '', 2**40).encode(signer)}"}

    before_rotation = upload_ticket(OLD)
    assert (await client.post("/missing", data=body, headers=before_rotation)).status == 200  # verified and remembered
    answers = await asyncio.gather(*(client.post("/missing", data=body, headers=upload_ticket(NEW)) for _ in range(3)))
    assert [a.status for a in answers] == [200, 200, 200] and tracker.asked == 1
    old_ticket = await client.post("/missing", data=body, headers=upload_ticket(OLD))
    assert old_ticket.status == 403  # the retired key signs nothing any more
    remembered = await client.post("/missing", data=body, headers=before_rotation)
    assert remembered.status == 403  # nor does a ticket it signed before, though the seeder had verified it
    forged = await client.post("/missing", data=body, headers=upload_ticket(Signer.generate()))
    assert forged.status == 403 and "not issued by this tracker" in (await forged.json())["error"]


async def test_a_seeder_given_only_a_key_refuses_tickets_of_another(tmp_path, aiohttp_client) -> None:
    store = DirectoryChunkStore(tmp_path / "store", durable=False)
    client = await aiohttp_client(make_app(SeederContext(store, OLD.public_key)))
    ticket = Ticket("admin", UPLOAD, "", 2**40).encode(NEW)
    answer = await client.post("/missing", data=pack.encode_hashes(["ab" * 32]), headers={"Authorization": f"Ticket {ticket}"})
    assert answer.status == 403
