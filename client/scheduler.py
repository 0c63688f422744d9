"""The download scheduler: which chunks to ask of which source, decided without I/O.

Async code reports what happened, with the time as a plain float, and sends
what `plan` returns. Each source is kept `TARGET_LATENCY` seconds of its
measured throughput busy, so the split follows speed, slow peers never hold
the seeder back nor hold a long backlog, and a source with room and nothing
fresh to fetch duplicates slower sources' pieces, so the last pieces finish
on the fastest source (endgame). Late or failed pieces go to other sources
first; a failing source backs off; a peer that sends a bad chunk is dropped.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from client.progress import human
from shared.pack import batches

Kind = Literal["seeder", "peer", "local"]

TARGET_LATENCY = 0.5  # seconds of a source's throughput kept outstanding
ALPHA = 0.3  # weight of the newest throughput sample
MIN_RATE = 16 * 1024  # an estimate never drops below this, so deadlines stay finite
TIMEOUT_FLOOR, TIMEOUT_SLACK, TIMEOUT_MAX = 5.0, 3.0, 60.0  # deadline: floor + slack x expected time, capped
BACKOFF_BASE, BACKOFF_MAX = 1.0, 30.0  # after failures: 1, 2, 4, 8, 16, 30, 30 ... seconds
GIVE_UP = 6  # failures in a row after which a source no longer counts as able to supply (see `stuck`)
SEEDER_CORRUPT_LIMIT = 3  # corrupt copies of one chunk before the seeder is not asked for it again
COPIES = 2  # requests in flight for one piece at most (endgame)
BATCH_BYTES, BATCH_PIECES = 4 << 20, 1024  # one request's limits, as the seeder takes them (client/sources.py SeederSource)
SHARE_BURST = 1 << 20  # what the seeder may send before friends have sent anything (see `seeder_share`)
PEER_FLOOR = 3e6  # friends slower than this together do not hold the seeder back (2/3 of it, once they do)


@dataclass(frozen=True)
class Limits:
    """What a kind of source is trusted with before it is measured, and at most."""

    initial_rate: float
    min_window: int
    max_window: int
    max_pieces: int


LIMITS: dict[str, Limits] = {
    "seeder": Limits(8e6, 8 << 20, 16 << 20, 4096),  # two to four HTTP batches in flight keep it pipelined
    "peer": Limits(1e6, 256 << 10, 4 << 20, 16),  # 15-30 MB/s at best; peerwire.DEFAULT_WINDOW requests
    "local": Limits(2e8, 16 << 20, 64 << 20, 4096),  # files on this disk: copied in batches on worker threads
}


@dataclass(frozen=True)
class Request:
    """Ask `source_id` for these chunks; if they have not all come by `deadline`, call `expire`."""

    source_id: str
    hashes: tuple[str, ...]
    deadline: float


@dataclass(frozen=True)
class Cancel:
    source_id: str
    hash: str


@dataclass(frozen=True)
class Receipt:
    """`fresh`: write the chunk (False for a duplicate or a dropped source); `cancel`: withdraw these requests."""

    fresh: bool
    cancel: tuple[Cancel, ...] = ()


@dataclass(frozen=True)
class SourceView:
    """One source as `mist status` shows it; `state` is ready, backing off, dropped (why) or gone."""

    source_id: str
    kind: Kind
    rate: float
    window: int
    outstanding: int
    received: int
    state: str


@dataclass(eq=False)
class _Source:
    id: str
    kind: Kind
    holds: set[str] | None  # None: everything
    rate: float
    max_pieces: int
    received: int = 0
    wire: int = 0  # bytes it sent us, as they crossed the network (compressed), duplicates included
    queue: deque[str] = field(default_factory=deque)  # pieces to ask it for, stale entries skipped lazily
    later: list[str] = field(default_factory=list)  # pieces it was late with or failed: its last resort
    asked: dict[str, float] = field(default_factory=dict)  # hash -> deadline
    refused: set[str] = field(default_factory=set)  # pieces not to ask it for again
    out: int = 0  # bytes outstanding
    failures: int = 0
    retry_at: float = 0.0
    busy_since: float = 0.0
    base: float | None = None  # the estimate before the current sample
    start: float = 0.0
    end: float = -math.inf
    sample_bytes: int = 0
    dropped: str | None = None
    gone: bool = False

    @property
    def live(self) -> bool:
        return not self.gone and self.dropped is None

    @property
    def window(self) -> int:
        limits = LIMITS[self.kind]
        return int(min(limits.max_window, max(limits.min_window, self.rate * TARGET_LATENCY)))

    def can(self, h: str) -> bool:
        return h not in self.refused and (self.holds is None or h in self.holds)

    @property
    def state(self) -> str:
        if self.dropped or self.gone:
            return f"dropped: {self.dropped}" if self.dropped else "gone"
        return f"{self.failures} failure(s), retry at {self.retry_at:.1f}" if self.failures else "ready"

    def has_room(self, size: int, limit: float) -> bool:
        """Flow control: within `limit` bytes and its pieces, except that an idle source always gets one."""
        return not self.asked or (self.out + size <= limit and len(self.asked) < self.max_pieces)


class Scheduler:
    """The state of one download: which pieces are done, in flight where, and how fast each source is."""

    def __init__(self, pieces: Mapping[str, int], seeder_share: float = 1.0, peer_floor: float = PEER_FLOOR) -> None:
        """`seeder_share`: while friends able to supply every remaining piece are online (or connecting) and
        together carry at least `peer_floor` (content bytes/s), the seeder sends at most this share of the bytes (the
        admin's upload is the circle's scarcest link); 1.0 uses the seeder as fast as it goes. A floor of 0 holds the
        seeder to its share whenever friends can carry the download, however slow they are."""
        self._share = seeder_share
        self._floor = peer_floor
        self._expecting = 0  # friends being connected to
        self._covered: bool | None = None  # every remaining piece held by a live peer (None: recompute)
        self._holding = False  # friends' rates hold the seeder to its share (hysteresis around PEER_FLOOR)
        self._sizes = dict(pieces)
        self._left = sum(self._sizes.values())  # bytes not yet received
        self._done: set[str] = set()
        self._flight: dict[str, set[str]] = {}  # hash -> ids of the sources asked for it
        self._sources: dict[str, _Source] = {}
        self._seeder_bad: dict[str, int] = {}

    def add_source(self, source_id: str, holds: Iterable[str] | None, kind: Kind, max_pieces: int | None = None) -> bool:
        """Use a source (holds None: everything; max_pieces: its WELCOME window); False if dropped before."""
        old = self._sources.get(source_id)
        if old is not None and old.dropped:
            return False
        if old is not None and not old.gone:
            raise ValueError(f"source {source_id!r} is already part of this download; remove it before adding it again")
        limits = LIMITS[kind]
        s = _Source(
            source_id,
            kind,
            None if holds is None else set(holds),
            limits.initial_rate,
            min(max_pieces or limits.max_pieces, limits.max_pieces),
            old.received if old else 0,
        )
        s.queue.extend(h for h in self._sizes if self._fresh(h) and s.can(h))
        self._sources[source_id] = s
        self._covered = None
        return True

    def expect_peers(self, connecting: int) -> None:
        """How many friends are being connected to: until they are, the seeder is held back as if they were."""
        self._expecting = connecting

    def update_holdings(self, source_id: str, more: Iterable[str]) -> None:
        """A peer announced more chunks (HAVE)."""
        s = self._live(source_id)
        if s is None or s.holds is None:
            return
        new = [h for h in more if h in self._sizes and h not in s.holds]
        s.holds.update(new)
        self._covered = None
        s.queue.extend(h for h in new if self._fresh(h) and s.can(h))

    def remove_source(self, source_id: str) -> None:
        """The source went away: what it was asked for is wanted again."""
        s = self._sources.get(source_id)
        if s is not None and not s.gone:
            s.gone = True
            self._covered = None
            self._release(s)

    def useful(self, holds: Iterable[str] | None) -> int:
        """Bytes a source holding `holds` could still supply: for choosing peers under the caller's cap."""
        wanted = (h for h in self._sizes) if holds is None else (h for h in set(holds) if h in self._sizes)
        return sum(self._sizes[h] for h in wanted if h not in self._done)

    def plan(self, now: float) -> list[Request]:
        """What to send now: fresh pieces to every ready source (fastest first), then endgame duplicates.

        Near the end a window shrinks to the source's share of what is left, so all finish together.
        """
        allowed = {s.id: self._allowance(s) for s in self._sources.values() if s.live and s.retry_at <= now}
        ready = sorted((s for s in self._sources.values() if allowed.get(s.id, 0) > 0), key=lambda s: -s.rate)
        horizon = self._left / max(1.0, sum(s.rate for s in ready))  # seconds to the end if all went flat out
        limits = {s.id: min(s.window, s.rate * horizon, s.out + allowed[s.id]) for s in ready}
        taken = [(s, self._fill(s, limits[s.id], now)) for s in ready]
        taken += [(s, self._duplicate(s, min(s.window, s.out + allowed[s.id]), now)) for s in ready]
        return [r for s, hashes in taken for r in self._requests(s, hashes, now)]

    def received(self, source_id: str, h: str, now: float, wire: int | None = None) -> Receipt:
        """A verified chunk arrived (`wire`: what it took on the network, default its size): count it, learn
        the source's speed, and cancel other requests for it."""
        s = self._sources.get(source_id)
        if s is None or h not in self._sizes:
            return Receipt(False)
        s.wire += self._sizes[h] if wire is None else wire
        self._unask(s, h)
        if not s.live or h in self._done:
            return Receipt(False)
        self._done.add(h)
        cancels = tuple(Cancel(other, h) for other in sorted(self._flight.get(h, ())))
        for c in cancels:
            self._unask(self._sources[c.source_id], h)
        size = self._sizes[h]
        s.received += size
        self._left -= size
        s.failures, s.retry_at = 0, min(s.retry_at, now)
        self._measure(s, size, now)
        return Receipt(True, cancels)

    def corrupt(self, source_id: str, h: str) -> None:
        """A chunk failed verification: a peer is dropped; the seeder is asked again, a few times at most."""
        s = self._live(source_id)
        if s is None:
            return
        self._unask(s, h)
        if s.kind == "peer":
            self.drop(source_id, f"sent a corrupt copy of chunk {h[:12]}")
        else:
            self._seeder_bad[h] = self._seeder_bad.get(h, 0) + 1
            if self._seeder_bad[h] >= SEEDER_CORRUPT_LIMIT:
                s.refused.add(h)
        self._rewant([h], avoid=s)

    def drop(self, source_id: str, why: str) -> None:
        """A peer broke the rules (a corrupt chunk, the wire protocol): what it was asked goes elsewhere, and it is
        not asked again in this download (nor taken back by `add_source`)."""
        s = self._live(source_id)
        if s is None or s.kind != "peer":
            return
        s.dropped = why
        self._covered = None
        self._release(s)

    def missing(self, source_id: str, hashes: Iterable[str]) -> None:
        """The source does not have these after all (MISSING, REJECT not held): never ask it for them again."""
        s, hashes = self._live(source_id), list(hashes)
        if s is not None:
            self._unask(s, *hashes)
            s.refused.update(hashes)
            self._covered = None
            self._rewant(hashes)

    def failed(self, source_id: str, hashes: Iterable[str], now: float) -> None:
        """A request failed (connection error, busy): back off; more failures from the same outage don't count."""
        s, hashes = self._live(source_id), list(hashes)
        if s is None:
            return
        self._unask(s, *hashes)
        if s.retry_at <= now:
            s.failures += 1
            s.retry_at = now + min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (s.failures - 1))
        self._rewant(hashes, avoid=s)

    def expire(self, now: float) -> list[Cancel]:
        """Withdraw requests past their deadline, to be asked elsewhere; the late source's estimate halves."""
        cancels: list[Cancel] = []
        for s in self._sources.values():
            late = [h for h, deadline in s.asked.items() if deadline <= now]
            self._unask(s, *late)
            cancels += [Cancel(s.id, h) for h in late]
            if late:
                s.rate = max(MIN_RATE, s.rate / 2)
                self._rewant(late, avoid=s)
        return cancels

    def wake_at(self, now: float) -> float | None:
        """When `expire` or `plan` next has something to do if nothing arrives first."""
        live = [s for s in self._sources.values() if s.live]
        times = [d for s in live for d in s.asked.values()] + [s.retry_at for s in live if s.retry_at > now]
        return min(times, default=None)

    def stuck(self) -> tuple[str, ...]:
        """Pieces no live source holds, or whose holders all failed `GIVE_UP` times in a row: the cue to fail."""
        able = [s for s in self._sources.values() if s.live and s.failures < GIVE_UP]
        if any(s.holds is None and not s.refused for s in able):
            return ()  # one source can supply every piece (the seeder, as a rule): asked every turn, so answered in O(1)
        return tuple(h for h in self._sizes if h not in self._done and not any(s.can(h) for s in able))

    @property
    def done(self) -> bool:
        return len(self._done) == len(self._sizes)

    @property
    def in_flight(self) -> int:
        """Pieces asked of some source and not yet answered."""
        return len(self._flight)

    @property
    def remaining(self) -> int:
        """Bytes still to receive."""
        return self._left

    @property
    def dropped(self) -> dict[str, str]:
        """Peers dropped for a corrupt chunk, with the reason: to report to the tracker."""
        return {s.id: s.dropped for s in self._sources.values() if s.dropped}

    def bytes_by_source(self) -> dict[str, int]:
        return {s.id: s.received for s in self._sources.values()}

    def bytes_by_kind(self) -> dict[Kind, int]:
        """For --json: `bytes_from_seeder` and `bytes_from_peers`."""
        totals: dict[Kind, int] = {"seeder": 0, "peer": 0, "local": 0}
        for s in self._sources.values():
            totals[s.kind] += s.received
        return totals

    def sources(self) -> tuple[SourceView, ...]:
        return tuple(SourceView(s.id, s.kind, s.rate, s.window, s.out, s.received, s.state) for s in self._sources.values())

    def __repr__(self) -> str:
        return (
            f"<Scheduler {len(self._done)}/{len(self._sizes)} pieces, {human(self.remaining)} to go, "
            f"{len(self._flight)} in flight; "
            + "; ".join(
                f"{v.kind} {v.source_id}: {human(v.rate)}/s, {human(v.outstanding)} of {human(v.window)} out, {v.state}"
                for v in self.sources()
            )
            + ">"
        )

    def _allowance(self, s: _Source) -> float:
        """Bytes the seeder may still be asked for while friends who can finish the download send their share."""
        if s.kind != "seeder" or self._share >= 1.0:
            return math.inf
        peers = [p for p in self._sources.values() if p.kind == "peer" and p.live]
        floor = self._floor * 2 / 3 if self._holding else self._floor  # no flapping when friends hover near it
        carried = sum(p.rate for p in peers)
        self._holding = bool(peers) and carried >= floor  # by measured rates only
        # Friends still connecting count at the rate a new friend is trusted with: one alone does not stall it.
        expected = carried + self._expecting * LIMITS["peer"].initial_rate >= self._floor
        if not (self._holding or (self._expecting and expected)):
            return math.inf
        if self._covered is None:
            self._covered = all(any(p.can(h) for p in peers) for h in self._sizes if h not in self._done)
        if peers and not self._covered:
            return math.inf
        # In network bytes, as the admin's upload sees them (what is outstanding counted at its full size).
        from_peers = sum(p.wire for p in self._sources.values() if p.kind == "peer")
        return SHARE_BURST + self._share / (1.0 - self._share) * from_peers - s.wire - s.out

    def _live(self, source_id: str) -> _Source | None:
        s = self._sources.get(source_id)
        return s if s is not None and s.live else None

    def _fresh(self, h: str) -> bool:
        return h not in self._done and h not in self._flight

    def _fill(self, s: _Source, limit: float, now: float) -> list[str]:
        taken = []
        while s.queue or s.later:
            if not s.queue:
                s.queue.extend(s.later)
                s.later.clear()
            h = s.queue[0]
            if not (self._fresh(h) and s.can(h)):
                s.queue.popleft()
                continue
            if not s.has_room(self._sizes[h], limit):
                break
            s.queue.popleft()
            self._take(s, h, now)
            taken.append(h)
        return taken

    def _duplicate(self, s: _Source, limit: float, now: float) -> list[str]:
        """Endgame: once every wanted piece is in flight, a source with room takes over slower sources' pieces."""
        if s.queue or len(self._done) + len(self._flight) < len(self._sizes):
            return []
        taken: list[str] = []
        for other in sorted((o for o in self._sources.values() if o.asked and o.rate < s.rate), key=lambda o: o.rate):
            for h in list(other.asked):
                if len(self._flight[h]) < COPIES and h not in s.asked and s.can(h):
                    if not s.has_room(self._sizes[h], limit):
                        return taken
                    self._take(s, h, now)
                    taken.append(h)
        return taken

    def _take(self, s: _Source, h: str, now: float) -> None:
        if not s.asked:
            s.busy_since = now
        self._flight.setdefault(h, set()).add(s.id)
        s.asked[h] = math.inf  # until `_requests` sets the deadline
        s.out += self._sizes[h]

    def _requests(self, s: _Source, hashes: list[str], now: float) -> list[Request]:
        deadline = now + min(TIMEOUT_MAX, TIMEOUT_FLOOR + TIMEOUT_SLACK * s.out / s.rate)
        for h in hashes:
            s.asked[h] = deadline
        return [Request(s.id, tuple(b), deadline) for b in batches(hashes, self._sizes, BATCH_BYTES, BATCH_PIECES)]

    def _unask(self, s: _Source, *hashes: str) -> None:
        for h in hashes:
            if s.asked.pop(h, None) is not None:
                s.out -= self._sizes[h]
                self._flight[h].discard(s.id)
                if not self._flight[h]:
                    del self._flight[h]

    def _release(self, s: _Source) -> None:
        pending = list(s.asked)
        self._unask(s, *pending)
        s.queue.clear()
        self._rewant(pending)

    def _rewant(self, hashes: Iterable[str], avoid: _Source | None = None) -> None:
        """Put pieces that are wanted again first in every holder's queue, and last for `avoid` if others hold them."""
        wanted = [h for h in dict.fromkeys(hashes) if h in self._sizes and self._fresh(h)]
        live = [s for s in self._sources.values() if s.live]
        for s in live:
            mine = [h for h in wanted if s.can(h)]
            if s is avoid:
                elsewhere = {h for h in mine if any(o is not s and o.can(h) for o in live)}
                s.later += [h for h in mine if h in elsewhere]
                mine = [h for h in mine if h not in elsewhere]
            s.queue.extendleft(reversed(mine))

    def _measure(self, s: _Source, size: int, now: float) -> None:
        """EWMA of bytes over the time since the previous delivery (or since busy); one instant is one sample."""
        if now > s.end:
            s.base = s.rate if s.end > -math.inf else None
            s.start, s.end, s.sample_bytes = max(s.end, s.busy_since), now, 0
        s.sample_bytes += size
        sample = s.sample_bytes / max(s.end - s.start, 1e-3)
        s.rate = max(MIN_RATE, sample if s.base is None else (1 - ALPHA) * s.base + ALPHA * sample)
