"""HTTP to the tracker and the seeder (aiohttp's client lives only here).

Refreshes the access token before it expires, follows the tracker to a new
signing key only along hand-overs signed by the key pinned at login, and turns
connection failures and error answers into the client's own errors with the
server's message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from client.credentials import Credentials
from client.errors import ServerRefused, TrackerUnavailable, TrackerUnreadable
from client.seeder_http import SeederHttp
from shared import handover, manifest_delta, pack, signing
from shared.errors import KeyHandoverError, ManifestError, PackError, SignatureError
from shared.signing import fingerprint

REFRESH_MARGIN = 60
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=120)


ERROR_LIMIT = 64 * 1024  # an error answer is a sentence and a detail
SMALL_LIMIT = 1024 * 1024  # a login, a refresh, the tracker's key and its hand-overs
JSON_LIMIT = 64 * 1024 * 1024  # the catalog, a plan: large for a big game, never more than this
MANIFEST_LIMIT = 256 * 1024 * 1024  # the largest manifest a tracker accepts from a push


async def _read_capped(response: aiohttp.ClientResponse, limit: int, server: str = "") -> bytes:
    """The whole answer, refused by its declared length or, without one, once it passes `limit` bytes: a broken or
    hostile server cannot make the client hold more than that (TrackerUnreadable: its breach, not ours)."""
    if response.content_length is not None and response.content_length > limit:
        raise _too_large(response, f"declares {response.content_length} bytes", server)
    answer = bytearray()
    async for piece in response.content.iter_chunked(1 << 20):
        answer += piece
        if len(answer) > limit:
            raise _too_large(response, f"passed {limit} bytes", server)
    return bytes(answer)


def _too_large(response: aiohttp.ClientResponse, how: str, server: str) -> TrackerUnreadable:
    url = str(response.url)
    return TrackerUnreadable(f"{url} answered with more than Mist reads ({how}); is {server or 'it'} a Mist tracker?")


async def _json(response: aiohttp.ClientResponse, url: str, limit: int = SMALL_LIMIT) -> Any:
    """An answer's JSON, read within `limit`; an answer Mist cannot read is said to be so, never a traceback."""
    body = await _read_capped(response, limit)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # nested too deep is as unreadable as broken
        raise TrackerUnreadable(
            f"{url} did not answer with JSON Mist can read; is it a Mist tracker, and of this version?"
        ) from exc


async def _error(response: aiohttp.ClientResponse) -> ServerRefused:
    try:
        body = json.loads(await _read_capped(response, ERROR_LIMIT))
        message, detail = body.get("error") or response.reason, body.get("detail")
    except (ValueError, RecursionError, AttributeError, TrackerUnreadable):
        message, detail = f"{response.status} {response.reason}", None
    request_id = response.headers.get("X-Request-Id", "")
    if response.status >= 500 and request_id:
        message = f"{message} (request id {request_id}: quote it to the admin)"  # it finds the server's log lines
    return ServerRefused(response.status, str(message), detail)


def _ticket_headers(ticket: str) -> dict[str, str]:
    return {"Authorization": f"Ticket {ticket}", "Content-Type": "application/octet-stream"}


def _seeder_unreachable(path: str, exc: Exception) -> TrackerUnavailable:
    return TrackerUnavailable(f"cannot reach the seeder at {path} ({exc}); try again shortly")


def _unreachable(url: str, exc: Exception) -> TrackerUnavailable:
    return TrackerUnavailable(f"cannot reach {url} ({exc.__class__.__name__}: {exc}); is the Mist server running?")


async def login(url: str, user: str, password: str) -> Credentials:
    """Log in with a password and return the session to save (pins the tracker's key)."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        try:
            async with http.post(f"{url}/api/login", json={"user": user, "password": password}) as response:
                if response.status != 200:
                    raise await _error(response)
                body = await _json(response, f"{url}/api/login")
        except aiohttp.ClientError as exc:
            raise _unreachable(url, exc) from exc
    try:
        return Credentials(
            url=url,
            user=body["user"],
            scope=body["scope"],
            access_token=body["access_token"],
            access_expires=time.time() + body["expires_in"],
            refresh_token=body["refresh_token"],
            public_key=body["public_key"],
        )
    except (KeyError, TypeError) as exc:  # not an object, or one without a session's fields
        raise TrackerUnreadable(f"{url}/api/login did not answer with a session; is it a Mist tracker?") from exc


class Socket:
    """A WebSocket to the tracker carrying JSON objects; failures become TrackerUnavailable."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws

    def __repr__(self) -> str:
        return f"Socket(closed={self._ws.closed})"

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send_str(json.dumps(message))
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TrackerUnavailable(f"the connection to the tracker dropped ({exc})") from exc

    async def receive(self) -> dict[str, Any] | None:
        """The next object, or None once the tracker closed the socket."""
        while True:
            message = await self._ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                try:
                    body = json.loads(message.data)
                except (ValueError, RecursionError):
                    continue
                if isinstance(body, dict):
                    return body
            elif message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return None

    async def close(self) -> None:
        await self._ws.close()


async def local_lines(url: str, token: str, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """POST to the local daemon and yield each JSON line of its answer as it comes."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as http:
        try:
            async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status >= 400:
                    raise await _error(response)
                async for line in response.content:
                    if line.strip():
                        yield json.loads(line)
        except aiohttp.ClientError as exc:
            raise TrackerUnavailable(f"lost the mist daemon at {url} ({exc}); `mist status` shows whether it runs") from exc


async def local_call(url: str, token: str, method: str = "GET") -> Any:
    """One JSON call to the local daemon."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        try:
            async with http.request(method, url, headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status >= 400:
                    raise await _error(response)
                return await response.json()
        except aiohttp.ClientError as exc:
            raise TrackerUnavailable(f"cannot reach the mist daemon at {url} ({exc})") from exc


async def fetch_image(url: str, limit: int) -> tuple[str, bytes] | None:
    """An image from the web (a game's header art): its content type and bytes, or None when it cannot be had."""
    timeout = aiohttp.ClientTimeout(total=20, sock_connect=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            if response.status != 200:
                return None
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            data = bytearray()
            async for piece in response.content.iter_chunked(64 * 1024):
                data += piece
                if len(data) > limit:
                    return None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return kind, bytes(data)


@dataclass(frozen=True)
class SignedManifest:
    data: bytes
    signature: str
    digest: str
    delta_from: str = ""  # the held build it was rebuilt from (shared/manifest_delta.py); "" when sent whole
    received: int = 0  # bytes of the answer's body on the wire (compressed, when the tracker compressed it)
    digest_signature: str = ""  # the tracker's signature of `digest` (shared/signing.py manifest_digest); "" from an older one
    path: Path | None = None  # where a delta of entries rebuilt it (then `data` is empty): it is not held whole
    rebuilt: manifest_delta.Rebuilt | None = None  # and where its bytes came from (shared/build_index.py from_rebuilt)


class Api:
    """One logged-in conversation with a tracker and its seeder.

    `on_refresh` saves the session whenever it changes (tokens, or the key
    re-pinned after a rotation); `on_key_change` is told once, in words, when
    the pinned key moves.
    """

    def __init__(
        self,
        creds: Credentials,
        on_refresh: Callable[[Credentials], object],
        connections: int = 8,
        on_key_change: Callable[[str], object] = lambda notice: None,
        tool: str = "mist",
    ) -> None:
        """`tool` names the command the person runs (mist, mistpipe), so advice in errors names it too."""
        self.creds = creds
        self.tool = tool
        self._on_refresh = on_refresh
        self.on_key_change = on_key_change
        self._following = asyncio.Lock()
        self._refreshing = asyncio.Lock()
        self._http = aiohttp.ClientSession(
            timeout=TIMEOUT,
            connector=aiohttp.TCPConnector(limit=connections, limit_per_host=connections),
            headers={"User-Agent": f"{tool} (Mist)"},
        )
        self._seeders = SeederHttp(f"{tool} (Mist)")

    def __repr__(self) -> str:
        return f"Api(url={self.creds.url!r}, user={self.creds.user!r})"

    @property
    def public_key(self) -> str:
        """The tracker key this client trusts now."""
        return self.creds.public_key

    async def __aenter__(self) -> "Api":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._seeders.close()
        await self._http.close()

    async def _fresh_token(self) -> None:
        """Refresh the access token when it is about to end, one caller at a time: refresh tokens rotate, and of
        two refreshes with the same one the tracker grants one and refuses the other ("log in again")."""
        if self.creds.access_expires - REFRESH_MARGIN >= time.time():
            return
        async with self._refreshing:
            if self.creds.access_expires - REFRESH_MARGIN < time.time():  # not refreshed meanwhile by another caller
                await self._refresh()

    async def _refresh(self) -> None:
        try:
            async with self._http.post(
                f"{self.creds.url}/api/refresh", json={"refresh_token": self.creds.refresh_token}
            ) as response:
                if response.status != 200:
                    raise self.advise(await _error(response))
                body = await _json(response, f"{self.creds.url}/api/refresh")
        except aiohttp.ClientError as exc:
            raise _unreachable(self.creds.url, exc) from exc
        if body["public_key"] != self.creds.public_key:
            await self.follow_key()
            if body["public_key"] != self.creds.public_key:
                raise KeyHandoverError("the tracker answered with two different signing keys; try again in a moment")
        self.creds.access_token = body["access_token"]
        self.creds.access_expires = time.time() + body["expires_in"]
        self.creds.refresh_token = body["refresh_token"]
        self._on_refresh(self.creds)

    def advise(self, error: ServerRefused) -> ServerRefused:
        """The tracker's refusal with what to do next, in this tool's words (the tracker does not know the tool)."""
        detail = error.detail if isinstance(error.detail, dict) else {}
        missing, game = detail.get("missing"), detail.get("game")
        advice = ""
        if error.status == 401:
            advice = f"run `{self.tool} login {self.creds.url} --user {self.creds.user}` again"
        elif missing == "game":
            advice = f"`{self.tool} ls` lists the games you can see"
        elif missing == "version" and isinstance(game, str):
            advice = f"`{self.tool} ls {game}` lists its versions"
        elif missing == "user":
            advice = "`mistpipe user ls` lists the accounts"
        if not advice:
            return error
        said = str(error)
        if error.status == 401:  # the tracker's own "log in again" gives way to the command that does it
            said = said.removesuffix("; refresh it or log in again").removesuffix(" or log in again")
            said = said.removesuffix("; log in again")
        return ServerRefused(error.status, f"{said}; {advice}", error.detail)

    async def follow_key(self) -> bool:
        """Re-pin the tracker's current key if signed hand-overs lead to it from ours; True if the key moved.

        Raise KeyHandoverError when the tracker shows another key that nothing
        signed by ours vouches for: the admin replaced it (log in again), or this
        is not our tracker.
        """
        pinned = self.creds.public_key
        async with self._following:
            if self.creds.public_key != pinned:
                return True  # another task just followed it
            served, chain = await self._tracker_key()
            if served == pinned:
                return False
            try:
                handover.follow(pinned, served, handover.parse_chain(chain))
            except KeyHandoverError as exc:
                raise KeyHandoverError(
                    f"the tracker's signing key changed since login (now {fingerprint(served)}) and no signature of the "
                    f"key you trusted vouches for it ({exc}); it may not be your tracker. If the admin replaced the key, "
                    "ask them for its fingerprint and run `login` again with --fingerprint"
                ) from exc
            self.creds.public_key = served
            self._on_refresh(self.creds)
        self.on_key_change(
            f"the tracker's signing key was rotated; now trusting {fingerprint(served)}, handed over by the key you trusted"
        )
        return True

    async def _tracker_key(self) -> tuple[str, object]:
        """The tracker's key and hand-over chain, from its public /api/info."""
        url = f"{self.creds.url}/api/info"
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise await _error(response)
                body = await _json(response, url)
        except aiohttp.ClientError as exc:
            raise _unreachable(self.creds.url, exc) from exc
        if not isinstance(body, dict) or not isinstance(body.get("public_key"), str):
            raise TrackerUnreadable(f"{url} did not say which key the tracker signs with; is it a Mist tracker?")
        return body["public_key"], body.get("key_handovers", [])

    async def verify_manifest(self, signed: "SignedManifest") -> str:
        """The manifest's SHA-256; SignatureError unless the pinned key signed it, after following a rotation if
        there was one.

        With a digest signature, the bytes are checked against `digest` and the signature over that digest is
        verified (a signature over the whole manifest costs three copies of it in memory); a delta's result was
        checked against `digest` when it was rebuilt. Without one (an older tracker), the manifest's own."""
        digest = signed.digest if signed.delta_from else await asyncio.to_thread(lambda: hashlib.sha256(signed.data).hexdigest())
        if signed.digest_signature:
            if digest != signed.digest:
                raise SignatureError(
                    "the manifest the tracker sent does not hash to the digest it signed; the data was forged or "
                    "altered in transit"
                )
            message, signature = signing.manifest_digest(digest), signed.digest_signature
        else:
            message = signed.data if signed.path is None else await asyncio.to_thread(signed.path.read_bytes)
            signature = signed.signature
        try:
            signing.verify(self.creds.public_key, message, signature)
        except SignatureError:
            if not await self.follow_key():
                raise
            signing.verify(self.creds.public_key, message, signature)
        return digest

    async def _send(self, method: str, path: str, most: int = JSON_LIMIT, **kwargs: Any) -> tuple[int, bytes, dict[str, str]]:
        """One request with this login; the answer may not pass `most` bytes."""
        await self._fresh_token()
        url = f"{self.creds.url}{path}"
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.creds.access_token}"}
        try:
            async with self._http.request(method, url, headers=headers, **kwargs) as response:
                if response.status >= 400:
                    raise self.advise(await _error(response))
                return response.status, await _read_capped(response, most, self.creds.url), dict(response.headers)
        except aiohttp.ClientError as exc:
            raise _unreachable(self.creds.url, exc) from exc

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A JSON API call to the tracker; every answer of its API is a JSON object."""
        _, body, _ = await self._send(method, path, **kwargs)
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise TrackerUnreadable(
                f"{self.creds.url} answered {path} with something that is not JSON Mist can read; "
                "is it a Mist tracker, and of this version?"
            )
        return answer

    async def commit_build(
        self, game: str, manifest: bytes, notes: str = "", launch: str = "", delta: bytes = b""
    ) -> dict[str, Any]:
        """Commit a pushed build: its canonical manifest (or `delta`, turning a build the tracker has into it), with
        the admin's release notes and launch command."""
        form = aiohttp.FormData()
        if delta:
            form.add_field("manifest_delta", delta, content_type=manifest_delta.CONTENT_TYPE, filename="manifest.delta")
        else:
            form.add_field("manifest", manifest, content_type="application/json", filename="manifest.json")
        if notes:
            form.add_field("notes", notes.encode(), content_type="text/plain; charset=utf-8", filename="notes.txt")
        if launch:
            form.add_field("launch", launch.encode(), content_type="text/plain; charset=utf-8", filename="launch.txt")
        return await self.call("POST", f"/api/games/{game}/builds", data=form)

    async def socket(self, path: str) -> Socket:
        """Open a WebSocket to the tracker with this login."""
        await self._fresh_token()
        url = "ws" + self.creds.url.removeprefix("http") + path
        try:
            ws = await self._http.ws_connect(
                url, headers={"Authorization": f"Bearer {self.creds.access_token}"}, heartbeat=30.0, max_msg_size=1024 * 1024
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise ServerRefused(exc.status, f"the tracker refused the swarm connection ({exc.message})") from exc
        except aiohttp.ClientError as exc:
            raise _unreachable(self.creds.url, exc) from exc
        return Socket(ws)

    async def manifest(
        self,
        game: str,
        version: str,
        held: tuple[str, bytes | Path] | None = None,
        into: Callable[[str], Path] | None = None,
    ) -> SignedManifest:
        """The build's manifest as the tracker signed it (the caller checks the signature). `held`: the digest
        and bytes (or kept file) of a build of the game this machine has; the tracker may then send only what
        differs, which is rebuilt here into the exact bytes of the new build (a tracker that cannot sends it
        whole). With a held file and `into` (the file to write a build's manifest to, by its digest), the delta
        is asked for in entries and applied file to file, neither manifest held whole (shared/manifest_delta.py)."""
        path = f"/api/games/{game}/builds/{version}/manifest"
        params = {"from": held[0]} if held else None
        if params is not None and held is not None and isinstance(held[1], Path) and into is not None:
            params["delta"] = manifest_delta.ENTRIES
        _, body, headers = await self._send("GET", path, most=MANIFEST_LIMIT, params=params)
        signature, digest = headers.get("X-Mist-Signature", ""), headers.get("X-Mist-Digest", "")
        digest_signature = headers.get("X-Mist-Digest-Signature", "")
        length = headers.get("Content-Length", "").strip()
        received = int(length) if length.isdigit() else len(body)
        if held and headers.get("X-Mist-Delta-From") == held[0]:
            base = held[1]
            try:
                if manifest_delta.read_header(body).entries and isinstance(base, Path) and into is not None:
                    target = into(digest)
                    rebuilt = await asyncio.to_thread(_rebuild_file, base, body, digest, target)
                    return SignedManifest(b"", signature, digest, held[0], received, digest_signature, target, rebuilt)
                old = base if isinstance(base, bytes) else await asyncio.to_thread(base.read_bytes)
                data = await asyncio.to_thread(manifest_delta.apply, old, body, digest)
            except (ManifestError, KeyError, OSError):  # a delta that does not rebuild the build: ask for it whole
                whole = await self.manifest(game, version)
                return dataclasses.replace(whole, received=whole.received + received)  # both were downloaded
            return SignedManifest(data, signature, digest, held[0], received, digest_signature)
        return SignedManifest(body, signature, digest, "", received, digest_signature)

    async def seeder(self, path: str, ticket: str, body: bytes, most: int) -> bytes | bytearray:
        """POST a binary body to a seeder URL with a ticket; return the whole answer, which may not pass `most`
        bytes: the caller knows what an honest answer can weigh, and a seeder that sends more is not buffered."""
        try:
            async with self._http.post(path, data=body, headers=_ticket_headers(ticket)) as response:
                if response.status >= 400:
                    raise await _error(response)
                if response.content_length is not None and response.content_length > most:
                    raise PackError(
                        f"the seeder's answer declares {response.content_length} bytes, more than the "
                        f"{most} it can honestly take; not read"
                    )
                if response.content_length is not None:
                    return await _read_declared(response.content, response.content_length)
                answer = bytearray()
                async for piece in response.content.iter_chunked(1 << 20):
                    answer += piece
                    if len(answer) > most:
                        raise PackError(f"the seeder's answer passed the {most} bytes it can honestly take; cut off")
                return bytes(answer)
        except aiohttp.ClientError as exc:
            raise _seeder_unreachable(path, exc) from exc

    async def seeder_answer(self, path: str, ticket: str, body: bytes, most: int) -> bytes | bytearray | memoryview:
        """As `seeder`, for chunk batches (`/fetch`): a plain answer (a 200 with a length) is read in place
        (`client.seeder_http`) into a buffer to `give_back` once read; any other is asked again by `seeder`,
        which reads any answer and words every error."""
        if self._seeders.plain(path):
            try:
                in_place = await self._seeders.post(path, _ticket_headers(ticket), body, most)
            except OSError as exc:  # refused, reset, timed out, a TLS failure
                raise _seeder_unreachable(path, exc) from exc
            if in_place is not None:
                return in_place
        return await self.seeder(path, ticket, body, most)

    def give_back(self, answer: bytes | bytearray | memoryview) -> None:
        """An answer of `seeder_answer` no longer used: its buffer serves a later answer."""
        if isinstance(answer, memoryview):
            self._seeders.buffers.give_back(answer)

    def let_buffers_go(self) -> None:
        """A download ended: the answer buffers kept for it are freed (a daemon does not idle at its peak)."""
        self._seeders.buffers.clear()

    async def missing(self, seeder_url: str, ticket: str, hashes: list[str]) -> list[str]:
        body = await self.seeder(f"{seeder_url}/missing", ticket, pack.encode_hashes(hashes), 32 * len(hashes))
        return pack.decode_hashes(body, len(hashes))


async def _read_declared(content: aiohttp.StreamReader, length: int) -> bytearray:
    """A body of declared length, copied once into a buffer of that size as it arrives (`response.read()` joins
    its pieces twice: two copies of every megabyte, on the event loop's thread)."""
    answer = bytearray(length)
    view, at = memoryview(answer), 0
    while at < length:
        piece = await content.readany()
        if not piece or at + len(piece) > length:
            raise PackError(
                f"the seeder's answer was {'cut short' if not piece else 'longer than declared'} "
                f"at byte {at} of {length}; it is asked again"
            )
        view[at : at + len(piece)] = piece
        at += len(piece)
    return answer


def _rebuild_file(base: Path, delta: bytes, digest: str, target: Path) -> manifest_delta.Rebuilt:
    """Apply a delta of entries from the held manifest's file to `target`; nothing is left there if it fails."""
    try:
        with base.open("rb") as held, target.open("wb") as out:
            return manifest_delta.apply_to_file(held, delta, digest, out)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
