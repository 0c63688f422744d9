"""Two clients meet in the tracker's swarm through whatever URL they logged in to (run by test_reverse_proxy.py).

usage: swarm_probe.py ADMIN_HOME FRIEND_HOME GAME VERSION

The friend (`mist` login in FRIEND_HOME) announces that it holds the build; the admin (`mistpipe` login in
ADMIN_HOME) finds it and sends it an offer, which the friend answers. Each step is a message through the
tracker's WebSocket, so this proves the client's own WebSocket code works both ways through the proxy.
Prints one JSON object; exits 1 with the reason if a step fails.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from client import credentials
from client.api import Api
from client.signalling import Offer, Signalling

WAIT = 10.0


async def probe(admin_home: Path, friend_home: Path, game: str, version: str) -> dict[str, object]:
    async with Api(credentials.load(admin_home, "mistpipe"), lambda c: None) as as_admin, \
            Api(credentials.load(friend_home, "mist"), lambda c: None) as as_friend:
        digest = (await as_admin.manifest(game, version)).digest
        offers: list[Offer] = []

        async def on_offer(offer: Offer) -> None:
            offers.append(offer)
            await friend.answer(offer, "answer:" + offer.sdp)

        friend = Signalling(as_friend, on_offer, announcement=lambda: ([digest], True))
        admin = Signalling(as_admin)
        async with asyncio.TaskGroup() as sockets:
            running = [sockets.create_task(s.run(forever=False)) for s in (friend, admin)]
            for who, s in (("friend", friend), ("admin", admin)):
                if not await s.wait_connected(WAIT):
                    raise SystemExit(json.dumps({"error": f"the {who} never joined the swarm: {s.last_error}"}))
            await friend.announce()  # answered once the tracker has recorded it
            holders = [f for f in await admin.find(game, version) if f.peer == friend.peer_id]
            if not holders:
                raise SystemExit(json.dumps({"error": "the admin's find did not list the friend"}))
            answer = await admin.offer(friend.peer_id, digest, "offer-sdp")
            for task in running:
                task.cancel()
    return {"friend_peer": friend.peer_id, "holders": [h.user for h in holders], "answer": answer,
            "offers_seen_by_friend": [o.sdp for o in offers]}


if __name__ == "__main__":
    admin_home, friend_home, game, version = sys.argv[1:5]
    print(json.dumps(asyncio.run(probe(Path(admin_home), Path(friend_home), game, version))))
