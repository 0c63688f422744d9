"""The client follows the tracker to a rotated key only along hand-overs signed by the key it pinned at login:
`mist`, `mistpipe` (both through Api) and a daemon serving a friend whose ticket the new key signed.

A small fake tracker on loopback answers /api/info and /api/refresh as the real one does."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import cast

import pytest
from aiohttp import web

from client import credentials
from client.api import Api, SignedManifest
from client.credentials import Credentials
from client.peerlink import PeerGone, PeerLink
from client.peerwire import Hello, HaveAll, Message, Welcome
from client.ratelimit import CAP_BURST, TokenBucket
from client.sharing import Library, Uploads, serve
from client.state import State
from shared.build_index import BuildIndex
from shared.chunking import DEFAULT_PARAMS
from shared.errors import KeyHandoverError, SignatureError
from shared.handover import Handover
from shared.manifest import Manifest
from shared import signing
from shared.signing import Signer, fingerprint
from shared.tickets import READ, Ticket

A, B, C = Signer.generate(), Signer.generate(), Signer.generate()
A_TO_B = Handover.sign(A, B.public_key, 1_700_000_000)
B_TO_C = Handover.sign(B, C.public_key, 1_700_000_100)
BUILD = "ab" * 32
MANIFEST = b'{"game":"hollow","version":"2"}'


class Tracker:
    """What the fake tracker says its key and chain are, and how often it was asked."""

    def __init__(self, key: Signer, chain: list[Handover]) -> None:
        self.key, self.chain, self.asked = key, chain, 0

    def app(self) -> web.Application:
        async def info(request: web.Request) -> web.Response:
            self.asked += 1
            return web.json_response({"service": "mist-tracker", "public_key": self.key.public_key,
                                      "key_handovers": [h.to_json() for h in self.chain]})

        async def refresh(request: web.Request) -> web.Response:
            return web.json_response({"user": "alice", "scope": "user", "access_token": "fresh", "expires_in": 900,
                                      "refresh_token": "next", "public_key": self.key.public_key})

        async def games(request: web.Request) -> web.Response:
            return web.json_response({"games": [], "token": request.headers["Authorization"]})

        app = web.Application()
        app.add_routes([web.get("/api/info", info), web.post("/api/refresh", refresh), web.get("/api/games", games)])
        return app


@pytest.fixture
async def client(aiohttp_server, tmp_path: Path):
    """Start a fake tracker with `tracker`; returns (Api pinned to A, saved sessions' home, notices said)."""
    made: list[Api] = []

    async def make(tracker: Tracker, expired: bool = False) -> tuple[Api, list[str]]:
        server = await aiohttp_server(tracker.app())
        creds = Credentials(url=str(server.make_url("")).rstrip("/"), user="alice", scope="user", access_token="old",
                            access_expires=0 if expired else time.time() + 900, refresh_token="r", public_key=A.public_key)
        notices: list[str] = []
        api = Api(creds, on_refresh=lambda c: credentials.save(tmp_path, "mist", c), on_key_change=notices.append)
        made.append(api)
        return api, notices

    yield make
    for api in made:
        await api.__aexit__()


def saved_key(home: Path) -> str:
    return credentials.load(home, "mist").public_key


async def test_a_signed_hand_over_re_pins_saves_and_says_so_once(client, tmp_path: Path) -> None:
    api, notices = await client(Tracker(B, [A_TO_B]))
    assert await api.follow_key() is True
    assert api.public_key == B.public_key == saved_key(tmp_path)
    assert notices == [f"the tracker's signing key was rotated; now trusting {fingerprint(B.public_key)}, "
                       "handed over by the key you trusted"]
    assert await api.follow_key() is False and len(notices) == 1


async def test_a_client_pinned_two_rotations_back_follows_the_chain(client, tmp_path: Path) -> None:
    api, notices = await client(Tracker(C, [A_TO_B, B_TO_C]))
    assert await api.follow_key() is True
    assert api.public_key == C.public_key == saved_key(tmp_path) and len(notices) == 1


@pytest.mark.parametrize("chain", [[], [B_TO_C], [Handover(A.public_key, B.public_key, 1, B.sign(b"forged"))]],
                         ids=["no hand-over", "not from the pinned key", "forged"])
async def test_a_key_nothing_signed_by_the_pinned_key_vouches_for_is_refused(client, tmp_path: Path, chain) -> None:
    api, notices = await client(Tracker(B if chain != [B_TO_C] else C, chain))
    with pytest.raises(KeyHandoverError, match="signing key changed since login .*signature of the key you trusted.*--fingerprint"):
        await api.follow_key()
    assert api.public_key == A.public_key and notices == []
    assert not credentials.path_for(tmp_path, "mist").exists()  # nothing re-pinned, nothing saved


async def test_a_manifest_signed_by_the_new_key_verifies_after_following(client) -> None:
    tracker = Tracker(B, [A_TO_B])
    api, notices = await client(tracker)
    await api.verify_manifest(SignedManifest(MANIFEST, B.sign(MANIFEST), ""))
    assert api.public_key == B.public_key and len(notices) == 1
    await api.verify_manifest(SignedManifest(MANIFEST, B.sign(MANIFEST), ""))
    assert tracker.asked == 1  # a good signature asks nothing


async def test_a_bad_manifest_signature_from_an_unchanged_tracker_stays_a_signature_error(client) -> None:
    api, _ = await client(Tracker(A, []))
    with pytest.raises(SignatureError, match="forged or altered") as caught:
        await api.verify_manifest(SignedManifest(MANIFEST, C.sign(MANIFEST), ""))
    assert not isinstance(caught.value, KeyHandoverError)


async def test_a_refresh_that_brings_a_rotated_key_follows_the_hand_over(client, tmp_path: Path) -> None:
    api, notices = await client(Tracker(B, [A_TO_B]), expired=True)
    assert (await api.call("GET", "/api/games"))["token"] == "Bearer fresh"
    assert api.public_key == B.public_key == saved_key(tmp_path) and len(notices) == 1
    assert credentials.load(tmp_path, "mist").refresh_token == "next"


async def test_a_refresh_that_brings_a_replaced_key_is_refused(client) -> None:
    api, _ = await client(Tracker(B, []), expired=True)
    with pytest.raises(KeyHandoverError, match="signing key changed since login"):
        await api.call("GET", "/api/games")
    assert api.public_key == A.public_key


async def test_tasks_that_notice_together_ask_the_tracker_once(client) -> None:
    tracker = Tracker(B, [A_TO_B])
    api, notices = await client(tracker)
    assert await asyncio.gather(*(api.follow_key() for _ in range(4))) == [True] * 4
    assert tracker.asked == 1 and len(notices) == 1


class Link:
    """A friend's side of a data channel: the messages it sends, then gone; what we answered."""

    def __init__(self, *messages: Message) -> None:
        self.incoming, self.sent = list(messages), cast(list[Message], [])

    async def receive(self) -> Message:
        if not self.incoming:
            raise PeerGone("the friend left")
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        pass


async def session_with(api: Api, signer: Signer) -> Link:
    library = Library(cast(State, None))
    library.builds = {BUILD: BuildIndex.of(Manifest("hollow", "1", DEFAULT_PARAMS, ()))}
    link = Link(Hello(Ticket("bob", READ, BUILD, 2**40).encode(signer)))
    await serve(cast(PeerLink, link), library, api, Uploads(TokenBucket(None, CAP_BURST)), "s1", "bob", BUILD, "hollow", 16)
    return link


async def test_a_daemon_pinned_to_the_old_key_follows_a_friend_s_ticket_signed_by_the_new(client) -> None:
    api, notices = await client(Tracker(B, [A_TO_B]))
    link = await session_with(api, B)
    assert link.sent[:2] == [Welcome(16), HaveAll(BUILD)]
    assert api.public_key == B.public_key and len(notices) == 1


async def test_a_daemon_does_not_follow_a_ticket_the_tracker_never_signed(client) -> None:
    tracker = Tracker(A, [])
    api, notices = await client(tracker)
    link = await session_with(api, C)
    assert link.sent == [] and api.public_key == A.public_key and notices == []
    assert tracker.asked == 1
    await session_with(api, A)  # a ticket of the pinned key asks nothing
    assert tracker.asked == 1


DIGEST = hashlib.sha256(MANIFEST).hexdigest()


def by_digest(key: Signer, data: bytes = MANIFEST, digest: str = DIGEST) -> SignedManifest:
    """A manifest as a tracker that vouches for its digest sends it (the whole-manifest signature left empty)."""
    return SignedManifest(data, "", digest, digest_signature=key.sign(signing.manifest_digest(digest)))


async def test_a_manifest_vouched_for_by_its_digest_verifies_and_gives_the_digest(client) -> None:
    tracker = Tracker(A, [])
    api, _ = await client(tracker)
    assert await api.verify_manifest(by_digest(A)) == DIGEST
    assert await api.verify_manifest(SignedManifest(MANIFEST, A.sign(MANIFEST), "")) == DIGEST  # an older tracker's
    assert tracker.asked == 0


async def test_a_digest_signature_by_the_new_key_verifies_after_following(client) -> None:
    api, notices = await client(Tracker(B, [A_TO_B]))
    assert await api.verify_manifest(by_digest(B)) == DIGEST
    assert api.public_key == B.public_key and len(notices) == 1


@pytest.mark.parametrize("signed", [
    SignedManifest(MANIFEST + b" ", "", DIGEST, digest_signature=A.sign(signing.manifest_digest(DIGEST))),
    SignedManifest(MANIFEST, "", DIGEST, digest_signature=A.sign(signing.manifest_digest("cd" * 32))),
    SignedManifest(MANIFEST, "", DIGEST, digest_signature=A.sign(MANIFEST)),
    SignedManifest(MANIFEST, A.sign(MANIFEST), DIGEST, digest_signature=A.sign(DIGEST.encode())),
], ids=["bytes of another manifest", "another digest signed", "the manifest's signature", "the bare digest signed"])
async def test_a_digest_signature_vouches_for_that_manifest_only(client, signed: SignedManifest) -> None:
    api, _ = await client(Tracker(A, []))
    with pytest.raises(SignatureError, match="forged or altered"):
        await api.verify_manifest(signed)
