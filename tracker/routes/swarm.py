"""The swarm: friends' clients online on a WebSocket, and the signalling that lets two of them connect.

A client that is online announces the builds it holds; a client that is
downloading asks which online friends hold builds of that game, and sends
each a WebRTC offer through the tracker, which relays the answer back. The
tracker relays an offer only when both ends may read the build it is for, and
an answer only for an offer it relayed the other way, so it is never a free
message bus between users. It sees no chunk: the two clients talk directly,
and the uploader checks the downloader's read ticket itself.

Messages are JSON objects with an `op`; requests that expect a reply carry an
`id`, echoed in the reply. Announcing a build also records it as held (the
next push makes patches from it); older clients send a `tally` after each
download, recorded as tracker/routes/finished.py records a finished one. The
tracker also sends `news` unasked when a build is published
(tracker/announce.py), only to members who may read it. The registry lives in this process's memory
(one tracker process; see docs/DECISIONS.md).
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from shared.errors import MistError
from tracker.db import patches as patch_queries, peer_reports, queries, releases
from tracker.db.queries import Viewer
from tracker.errors import BadRequest
from tracker.routes import finished
from tracker.routes.activity import note
from tracker.routes.web import CONTEXT, identity
from tracker.settings import DEFAULT_FLOOR, DEFAULT_SHARE, Settings

log = logging.getLogger("mist.swarm")
MAX_MESSAGE = 256 * 1024
MAX_SDP = 64 * 1024
MAX_ANNOUNCED = 1024
MAX_PEERS_LISTED = 16
REMEMBERED = 4096  # recent member ids kept after they leave, so a late report still names the user
HEARTBEAT = 30.0
DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(eq=False)
class Member:
    """One connected client: who it is, what it holds (digest -> game), whether it shares."""

    id: str
    viewer: Viewer
    socket: web.WebSocketResponse
    builds: dict[str, str] = field(default_factory=dict)
    sharing: bool = False
    announced: bool = False  # said what it holds at least once (news is sized from that)

    def __repr__(self) -> str:
        return f"Member({self.id[:8]}, user={self.viewer.user!r}, builds={len(self.builds)}, sharing={self.sharing})"


@dataclass
class Swarm:
    """Who is online, the offers waiting for an answer, and who recent member ids belonged to."""

    ice: list[dict[str, Any]] = field(default_factory=list)
    seeder_share: float = DEFAULT_SHARE
    peer_floor: int = DEFAULT_FLOOR
    members: dict[str, Member] = field(default_factory=dict)
    offers: OrderedDict[str, tuple[str, str]] = field(default_factory=OrderedDict)  # session -> (offerer, answerer)
    users: OrderedDict[str, str] = field(default_factory=OrderedDict)  # member id -> user name
    # Tells a member the news it has not heard, once it announced what it holds (tracker/announce.py sets it).
    on_announce: Callable[[Member], Awaitable[int]] | None = None

    def __repr__(self) -> str:
        return f"Swarm(members={len(self.members)}, offers={len(self.offers)})"

    @classmethod
    def from_settings(cls, settings: Settings) -> "Swarm":
        return cls(ice=settings.ice_servers, seeder_share=settings.seeder_share, peer_floor=settings.peer_floor)

    def join(self, member: Member) -> None:
        self.members[member.id] = member
        self.users[member.id] = member.viewer.user
        while len(self.users) > REMEMBERED:
            self.users.popitem(last=False)

    def leave(self, member: Member) -> None:
        self.members.pop(member.id, None)

    def expect_answer(self, session: str, offerer: str, answerer: str) -> None:
        self.offers[session] = (offerer, answerer)
        while len(self.offers) > REMEMBERED:
            self.offers.popitem(last=False)

    def holders(self, game: str, build: str, asking: str) -> list[Member]:
        """Online, sharing members holding a build of `game`: those with the whole build first, then shuffled."""
        found = [m for m in self.members.values() if m.id != asking and m.sharing and game in m.builds.values()]
        random.shuffle(found)
        found.sort(key=lambda m: build not in m.builds)
        return found[:MAX_PEERS_LISTED]


SWARM = web.AppKey("swarm", Swarm)


def _text(body: dict[str, Any], name: str, limit: int = 256) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadRequest(f"field {name!r} must be a non-empty string of at most {limit} characters")
    return value


def _count(body: dict[str, Any], name: str, limit: int) -> int:
    value = body.get(name, 0)
    if type(value) is not int or not 0 <= value <= limit:
        raise BadRequest(f"field {name!r} must be a whole number from 0 to {limit}")
    return value


def _digest(body: dict[str, Any], name: str = "build") -> str:
    value = _text(body, name, 64)
    if not DIGEST.match(value):
        raise BadRequest(f"field {name!r} must be a manifest digest (64 lowercase hex characters)")
    return value


class _Connection:
    """One member's conversation: each message is checked, acted on, and answered on the same socket."""

    def __init__(self, request: web.Request, member: Member) -> None:
        self.ctx, self.swarm, self.me = request.app[CONTEXT], request.app[SWARM], member
        self.app = request.app

    async def send(self, to: Member, message: dict[str, Any]) -> None:
        if not to.socket.closed:
            await to.socket.send_str(json.dumps(message))

    async def readable(self, viewer: Viewer, digests: list[str]) -> dict[str, tuple[str, str]]:
        return await self.ctx.db.run(lambda s: queries.readable_builds(s, digests, viewer))

    async def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        op = body.get("op")
        if op == "announce":
            return await self.announce(body)
        if op == "find":
            return await self.find(body)
        if op == "signal":
            return await self.signal(body)
        if op == "report":
            return await self.report(body)
        if op == "tally":
            return await self.tally(body)
        if op == "heard":
            return await self.heard(body)
        raise BadRequest(f"unknown op {op!r}; the ops are announce, find, signal, report, tally and heard")

    async def announce(self, body: dict[str, Any]) -> dict[str, Any]:
        builds = body.get("builds")
        if (
            not isinstance(builds, list)
            or len(builds) > MAX_ANNOUNCED
            or not all(isinstance(b, str) and DIGEST.match(b) for b in builds)
        ):
            raise BadRequest(f"'builds' must be a list of at most {MAX_ANNOUNCED} manifest digests")
        sharing = body.get("sharing", True)
        if not isinstance(sharing, bool):
            raise BadRequest("'sharing' must be true or false")
        readable = await self.readable(self.me.viewer, sorted(set(builds)))
        self.me.builds = {digest: game for digest, (game, _) in readable.items()}
        if self.me.viewer.user and readable:
            user = self.me.viewer.user
            await self.ctx.db.run(lambda s: patch_queries.record_held(s, user, readable))
        self.me.sharing = sharing
        first = not self.me.announced
        self.me.announced = True
        if first and self.swarm.on_announce is not None:
            await self.swarm.on_announce(self.me)  # news it missed while offline, before the reply: it knows why
        return {"op": "announced", "builds": sorted(self.me.builds), "sharing": sharing}

    async def heard(self, body: dict[str, Any]) -> dict[str, Any]:
        """The daemon heard these news messages: they are not kept for it any longer."""
        ids = body.get("news")
        if not isinstance(ids, list) or len(ids) > MAX_ANNOUNCED or not all(type(i) is int for i in ids):
            raise BadRequest(f"'news' must be a list of at most {MAX_ANNOUNCED} news ids (whole numbers)")
        user = self.me.viewer.user
        forgotten = await self.ctx.db.run(lambda s: releases.heard(s, user, ids))
        return {"op": "noted", "news": forgotten}

    async def find(self, body: dict[str, Any]) -> dict[str, Any]:
        game, version = _text(body, "game"), _text(body, "version")
        row, _, _ = await self.ctx.db.run(lambda s: queries.get_build(s, game, version, self.me.viewer))
        peers = []
        for m in self.swarm.holders(game, row.manifest_digest, self.me.id):
            if row.manifest_digest in await self.readable(m.viewer, [row.manifest_digest]):
                peers.append(
                    {
                        "peer": m.id,
                        "user": m.viewer.user,
                        "builds": sorted(d for d, g in m.builds.items() if g == game),
                        "complete": row.manifest_digest in m.builds,
                    }
                )
        return {"op": "peers", "build": row.manifest_digest, "peers": peers}

    async def signal(self, body: dict[str, Any]) -> dict[str, Any]:
        kind, session, to_id = _text(body, "kind", 16), _text(body, "session", 64), _text(body, "to", 64)
        sdp = body.get("sdp", "")
        if not isinstance(sdp, str) or len(sdp) > MAX_SDP:
            raise BadRequest(f"'sdp' must be a string of at most {MAX_SDP} characters")
        to = self.swarm.members.get(to_id)
        if to is None:
            return {"op": "gone", "session": session, "peer": to_id}
        relayed = {"op": "signal", "from": self.me.id, "user": self.me.viewer.user, "session": session, "kind": kind, "sdp": sdp}
        if kind == "offer":
            build = _digest(body)
            mine, theirs = await self.readable(self.me.viewer, [build]), await self.readable(to.viewer, [build])
            if build not in mine or build not in theirs:
                raise BadRequest("that friend cannot be asked for this build (it is not one you both may read)")
            game, version = mine[build]
            self.swarm.expect_answer(session, self.me.id, to.id)
            await self.send(to, {**relayed, "build": build, "game": game, "version": version})
        elif kind in ("answer", "refuse"):
            if self.swarm.offers.get(session) != (to.id, self.me.id):
                raise BadRequest("there is no offer from that friend to answer in this session")
            del self.swarm.offers[session]
            await self.send(to, relayed)
        else:
            raise BadRequest(f"unknown signal kind {kind!r}; the kinds are offer, answer and refuse")
        return {"op": "relayed", "session": session}

    async def report(self, body: dict[str, Any]) -> dict[str, Any]:
        peer, build = _text(body, "peer", 64), _digest(body)
        reason = _text(body, "reason", 2000)
        user = self.swarm.users.get(peer)
        readable = await self.readable(self.me.viewer, [build])
        if user is None or build not in readable:
            raise BadRequest("unknown peer or build; nothing was recorded")
        game = readable[build][0]
        stored = await self.ctx.db.run(
            lambda s: peer_reports.record_report(
                s, reporter=self.me.viewer.user, peer_user=user, build=build, game=game, reason=reason, now=self.ctx.now
            )
        )
        if stored:  # a repeat or a flood is dropped, and not logged either
            log.warning("%s reported %s (build %s of %s): %s", self.me.viewer.user, user, build[:12], game, reason)
            await note(self.ctx, "peer_report", self.me.viewer.user, game, readable[build][1], f"reported {user}: {reason}")
        return {"op": "reported", "peer": peer, "stored": stored}

    async def tally(self, body: dict[str, Any]) -> dict[str, Any]:
        """A finished download's sources (clients before the `installed` route sent them only here)."""
        build = _digest(body)
        peer_bytes = _count(body, "bytes_from_peers", finished.MAX_TALLY_BYTES)
        peer_chunks = _count(body, "chunks_from_peers", finished.MAX_TALLY_CHUNKS)
        seeder_bytes = _count(body, "bytes_from_seeder", finished.MAX_TALLY_BYTES)
        finished.check_counts(peer_bytes, peer_chunks, seeder_bytes)
        readable = await self.readable(self.me.viewer, [build])
        if build not in readable:
            raise BadRequest("unknown build; nothing was counted")
        game, version = readable[build]
        await finished.record(self.app, self.me.viewer.user, game, version, build, peer_bytes, peer_chunks, seeder_bytes)
        return {"op": "tallied", "build": build}


async def swarm_socket(request: web.Request) -> web.WebSocketResponse:
    """GET /api/swarm: a client's WebSocket to the swarm (Bearer login checked before the upgrade)."""
    who = identity(request)
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE)
    await socket.prepare(request)
    swarm = request.app[SWARM]
    member = Member(secrets.token_hex(16), Viewer(who.user, who.is_admin), socket)
    swarm.join(member)
    connection = _Connection(request, member)
    try:
        await socket.send_str(
            json.dumps(
                {
                    "op": "welcome",
                    "peer": member.id,
                    "ice": swarm.ice,
                    "seeder_share": swarm.seeder_share,
                    "peer_floor": swarm.peer_floor,
                    "public_key": request.app[CONTEXT].signer.public_key,
                }
            )
        )
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                break
            reply: dict[str, Any]
            body: Any = None
            try:
                body = json.loads(message.data)
                if not isinstance(body, dict):
                    raise BadRequest("each message must be a JSON object with an 'op'")
                reply = await connection.handle(body)
            except (ValueError, RecursionError):  # not JSON, or nested too deep to read
                reply = {"op": "error", "error": "each message must be a JSON object with an 'op'"}
            except MistError as exc:
                reply = {"op": "error", "error": str(exc)}
            if isinstance(body, dict) and "id" in body:
                reply["id"] = body["id"]
            await socket.send_str(json.dumps(reply))
    finally:
        swarm.leave(member)
    return socket


async def friends(request: web.Request) -> web.Response:
    """GET /api/friends: who is online now, whether they share, and which of the games you may see they hold.

    Only online members are listed (the tracker keeps no presence history), and a game the asker may not
    read is never named."""
    who = identity(request)
    me = Viewer(who.user, who.is_admin)
    members = list(request.app[SWARM].members.values())
    digests = sorted({d for m in members for d in m.builds})
    readable = await request.app[CONTEXT].db.run(lambda s: queries.readable_builds(s, digests, me))
    rows: dict[str, dict[str, Any]] = {}
    for m in members:
        if m.viewer.user == who.user:
            continue
        row = rows.setdefault(m.viewer.user, {"user": m.viewer.user, "sharing": False, "games": set()})
        row["sharing"] = row["sharing"] or m.sharing
        row["games"] |= {readable[d][0] for d in m.builds if d in readable}
    listed = [{**r, "games": sorted(r["games"])} for r in sorted(rows.values(), key=lambda r: r["user"])]
    return web.json_response({"friends": listed})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/swarm", swarm_socket), web.get("/api/friends", friends)]


async def close_all(app: web.Application) -> None:
    """On shutdown: close every member's socket, so the server stops at once and clients reconnect later."""
    for member in list(app[SWARM].members.values()):
        await member.socket.close(message=b"tracker shutting down")


async def end_sessions(app: web.Application, user: str, ended: list[str]) -> None:
    """An account's sessions were ended: close its sockets, and tell every other member which ticket sessions
    ended, so a friend's daemon stops serving a download that such a ticket opened."""
    swarm = app[SWARM]
    for member in [m for m in swarm.members.values() if m.viewer.user == user]:
        swarm.leave(member)
        await member.socket.close(code=4001, message=b"the session was ended by the admin")
    if not ended:
        return
    message = json.dumps({"op": "sessions-ended", "sessions": ended})
    for member in list(swarm.members.values()):
        try:
            await member.socket.send_str(message)
        except ConnectionError:
            pass  # it is leaving anyway
