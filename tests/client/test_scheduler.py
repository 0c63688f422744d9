"""The download scheduler, played against fake sources at given speeds on a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import pytest

from client.scheduler import (
    BACKOFF_MAX, GIVE_UP, LIMITS, PEER_FLOOR, SEEDER_CORRUPT_LIMIT, Cancel, Receipt, Scheduler,
)

KiB, MB = 1024, 1_000_000


def chunks(n: int, size: int = 64 * KiB) -> dict[str, int]:
    return {hashlib.sha256(str(i).encode()).hexdigest(): size for i in range(n)}


@dataclass
class Fake:
    """A source that serves what it is asked, in order, at `speed` bytes/s (0: it hangs)."""

    speed: float
    kind: str = "peer"  # a seeder answers a whole request at once, like one HTTP response
    holds: frozenset[str] | None = None
    down_until: float = 0.0  # requests before this fail at once
    corrupts: frozenset[str] = frozenset()
    vanish_at: float = math.inf
    queue: list[list[str]] = field(default_factory=list)
    clock: float = 0.0  # when the piece (or request) at the head started
    asked_at: list[float] = field(default_factory=list)
    failed_at: list[float] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancelled_at: list[float] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)  # pieces queued, after every request
    backlog_bytes: list[int] = field(default_factory=list)
    busy: float = 0.0
    gone: bool = False
    lost: list[str] = field(default_factory=list)  # what it was asked for when it vanished
    corrupted_at: list[float] = field(default_factory=list)
    wire_ratio: float = 1.0  # network bytes per byte of chunk (compression)

    def head(self) -> list[str]:
        return self.queue[0] if self.kind == "seeder" else self.queue[0][:1]

    def next_time(self, sizes: dict[str, int]) -> float | None:
        if not self.queue or not self.speed or self.gone:
            return None
        return self.clock + sum(sizes[h] for h in self.head()) / self.speed

    def cancel(self, h: str, now: float) -> None:
        self.cancelled.append(h)
        self.cancelled_at.append(now)
        if self.queue and h in self.head():
            self.clock = now
        self.queue = [[x for x in r if x != h] for r in self.queue]
        self.queue = [r for r in self.queue if r]


class Sim:
    """Plays fake sources through a Scheduler the way the async download loop will."""

    def __init__(self, sizes: dict[str, int], **fakes: Fake) -> None:
        self.sizes = sizes
        self.sched = Scheduler(sizes)
        self.fakes: dict[str, Fake] = {}
        self.now = 0.0
        self.by: dict[str, str] = {}  # piece -> the source whose copy was written
        self.writes: list[str] = []
        for name, fake in fakes.items():
            self.add(name, fake)

    def add(self, name: str, fake: Fake) -> None:
        self.fakes[name] = fake
        self.sched.add_source(name, fake.holds, "seeder" if fake.kind == "seeder" else "peer")

    def run(self, until: float = 1000.0) -> float:
        while not self.sched.done:
            assert self.now <= until, f"not done by {until}: {self.sched!r}"
            self.step()
        return self.now

    def step(self) -> None:
        for c in self.sched.expire(self.now):
            self.fakes[c.source_id].cancel(c.hash, self.now)
        failures = False
        for r in self.sched.plan(self.now):
            fake = self.fakes[r.source_id]
            fake.asked_at.append(self.now)
            if self.now < fake.down_until:
                fake.failed_at.append(self.now)
                self.sched.failed(r.source_id, r.hashes, self.now)
                failures = True
                continue
            if not fake.queue:
                fake.clock = self.now
            fake.queue.append(list(r.hashes))
            queued = [h for req in fake.queue for h in req]
            fake.backlog.append(len(queued))
            fake.backlog_bytes.append(sum(self.sizes[h] for h in queued))
        if failures:
            return  # what failed may go elsewhere right away
        times = [f.next_time(self.sizes) for f in self.fakes.values()]
        times += [f.vanish_at for f in self.fakes.values() if not f.gone and f.vanish_at > self.now]
        times.append(self.sched.wake_at(self.now))
        later = [t for t in times if t is not None]
        assert later, f"nothing will ever happen: {self.sched!r}"
        now = max(self.now, min(later))
        for f in self.fakes.values():
            if f.queue and f.speed and not f.gone:
                f.busy += now - self.now
        self.now = now
        for name, f in self.fakes.items():
            if not f.gone and f.vanish_at <= now:
                f.gone = True
                f.lost = [h for r in f.queue for h in r]
                f.queue.clear()
                self.sched.remove_source(name)
            while (t := f.next_time(self.sizes)) is not None and t <= now:
                batch = f.head()
                f.queue[0] = f.queue[0][len(batch):]
                f.queue = [r for r in f.queue if r]
                f.clock = t
                for h in batch:
                    self.deliver(name, h)

    def deliver(self, name: str, h: str) -> None:
        if h in self.fakes[name].corrupts:
            self.fakes[name].corrupted_at.append(self.now)
            self.sched.corrupt(name, h)
            return
        receipt = self.sched.received(name, h, self.now, int(self.sizes[h] * self.fakes[name].wire_ratio))
        for c in receipt.cancel:
            self.fakes[c.source_id].cancel(c.hash, self.now)
        if receipt.fresh:
            self.by[h] = name
            self.writes.append(h)

    def share(self, name: str) -> float:
        return self.sched.bytes_by_source()[name] / sum(self.sizes.values())

    def check_accounts(self) -> None:
        """Every piece written once, and the bytes per source add up to the build."""
        assert sorted(self.writes) == sorted(self.sizes)
        assert sum(self.sched.bytes_by_source().values()) == sum(self.sizes.values())
        for name in self.fakes:
            assert self.sched.bytes_by_source()[name] == sum(self.sizes[h] for h, by in self.by.items() if by == name)


def test_the_split_follows_throughput_and_every_source_stays_busy() -> None:
    sim = Sim(chunks(4000), seeder=Fake(120 * MB, kind="seeder"), fast=Fake(30 * MB), slow=Fake(10 * MB))
    took = sim.run()
    total = sum(sim.sizes.values())
    assert took < 1.005 * total / (160 * MB)  # all finish together: no source idles at the end
    assert sim.share("seeder") == pytest.approx(120 / 160, abs=0.04)
    assert sim.share("fast") == pytest.approx(30 / 160, abs=0.03)
    assert sim.share("slow") == pytest.approx(10 / 160, abs=0.02)
    for f in sim.fakes.values():
        assert f.busy > 0.98 * took
    rates = {v.source_id: v.rate for v in sim.sched.sources()}  # a seeder's answer is one sample, not 64
    assert rates == pytest.approx({"seeder": 120 * MB, "fast": 30 * MB, "slow": 10 * MB}, rel=0.1)
    sim.check_accounts()
    assert sim.sched.bytes_by_kind() == {"seeder": sim.sched.bytes_by_source()["seeder"],
                                         "peer": total - sim.sched.bytes_by_source()["seeder"], "local": 0}


def test_slow_peers_never_hold_back_a_fast_seeder() -> None:
    peers = {f"p{i}": Fake(1 * MB) for i in range(4)}
    sim = Sim(chunks(2000), seeder=Fake(200 * MB, kind="seeder"), **peers)
    took = sim.run()
    assert took < 1.1 * sum(sim.sizes.values()) / (204 * MB)
    assert all(sim.sched.bytes_by_source()[p] > 0 for p in peers)
    sim.check_accounts()


def test_a_dead_seeder_is_retried_with_backoff_while_peers_finish_the_download() -> None:
    sim = Sim(chunks(1000), seeder=Fake(100 * MB, kind="seeder", down_until=math.inf), a=Fake(5 * MB), b=Fake(5 * MB))
    took = sim.run()
    assert took == pytest.approx(sum(sim.sizes.values()) / (10 * MB), rel=0.05)
    assert sorted(set(sim.fakes["seeder"].failed_at)) == [0.0, 1.0, 3.0]  # then 7.0, after the download
    assert sim.sched.bytes_by_kind()["seeder"] == 0
    assert sim.sched.stuck() == ()
    sim.check_accounts()


def test_a_seeder_that_comes_back_is_used_again() -> None:
    sim = Sim(chunks(1000), seeder=Fake(100 * MB, kind="seeder", down_until=2.5), a=Fake(5 * MB))
    took = sim.run()
    assert sorted(set(sim.fakes["seeder"].failed_at)) == [0.0, 1.0]
    assert min(t for t in sim.fakes["seeder"].asked_at if t > 1.0) == 3.0
    assert sim.share("seeder") > 0.5
    assert took < 3.5
    sim.check_accounts()


def test_a_peer_that_sends_a_corrupt_chunk_is_dropped_and_the_chunk_comes_from_elsewhere() -> None:
    sizes = chunks(300)
    bad = frozenset(list(sizes)[5::7])
    sim = Sim(sizes, good=Fake(5 * MB), bad=Fake(5 * MB, corrupts=bad))
    sim.run()
    assert set(sim.sched.dropped) == {"bad"}
    assert "corrupt" in sim.sched.dropped["bad"]
    assert all(sim.by[h] == "good" for h in bad)
    assert sim.sched.bytes_by_source()["bad"] > 0  # the good chunks it sent before count
    first_bad = sim.fakes["bad"].corrupted_at[0]
    assert max(sim.fakes["bad"].asked_at) < first_bad  # nothing asked of it after
    assert sim.sched.add_source("bad", None, "peer") is False
    assert "dropped" in repr(sim.sched)
    sim.check_accounts()


def test_pieces_of_a_peer_that_vanishes_are_fetched_elsewhere() -> None:
    sim = Sim(chunks(300), a=Fake(5 * MB), gone=Fake(5 * MB, vanish_at=1.0))
    sim.run()
    lost = sim.fakes["gone"].lost
    assert lost and all(sim.by[h] == "a" for h in lost)
    assert 0 < sim.share("gone") < 0.5
    assert all(v.outstanding == 0 for v in sim.sched.sources())
    sim.check_accounts()


def test_requests_past_their_deadline_go_elsewhere_and_the_slow_source_is_trusted_less() -> None:
    sim = Sim(chunks(400), hung=Fake(0), good=Fake(2 * MB))
    while not sim.fakes["hung"].cancelled:
        sim.step()
    withdrawn = list(sim.fakes["hung"].cancelled)
    assert len(withdrawn) == 7  # all it was asked for, at the first request's deadline
    assert set(sim.fakes["hung"].cancelled_at) == {5.0 + 3 * 7 * 64 * KiB / 1e6}
    sim.run()
    assert all(sim.by[h] == "good" for h in withdrawn)
    hung = next(v for v in sim.sched.sources() if v.source_id == "hung")
    assert hung.rate < LIMITS["peer"].initial_rate / 2
    assert sim.sched.bytes_by_source()["hung"] == 0
    sim.check_accounts()


def test_a_timed_out_piece_goes_to_another_source_first_and_back_to_the_late_one_last() -> None:
    sizes = chunks(300)
    order = list(sizes)
    sched = Scheduler(sizes)
    sched.add_source("seeder", None, "seeder")
    (first, second) = sched.plan(0.0)
    late = first.hashes + second.hashes
    sched.add_source("peer", None, "peer")  # and not asked for anything yet
    assert sched.expire(first.deadline) == [Cancel("seeder", h) for h in late]
    again = sched.plan(first.deadline)
    peer = [h for r in again if r.source_id == "peer" for h in r.hashes]
    seeder = [h for r in again if r.source_id == "seeder" for h in r.hashes]
    assert peer == list(late[: len(peer)])  # though ranked below the seeder, still at half its guessed speed
    assert seeder == order[len(late) : len(late) + len(seeder)]  # fresh pieces first
    for h in seeder:
        sched.received("seeder", h, first.deadline + 1)
    rest = [h for r in sched.plan(first.deadline + 1) if r.source_id == "seeder" for h in r.hashes]
    fresh = order[len(late) + len(seeder) :]
    assert rest[: len(fresh)] == fresh  # the fresh pieces, and then, nothing else being left, its late ones
    assert rest[len(fresh) :] and set(rest[len(fresh) :]) <= set(late) - set(peer)


def test_the_last_fresh_piece_goes_to_the_fastest_idle_source() -> None:
    (a,) = sizes = chunks(1)
    sched = Scheduler(sizes)
    sched.add_source("slow", None, "peer")
    sched.add_source("seeder", None, "seeder")
    assert [(r.source_id, r.hashes) for r in sched.plan(0.0)] == [("seeder", (a,))]


def test_endgame_duplicates_a_slow_source_s_pieces_onto_a_faster_one_and_cancels_the_loser() -> None:
    sizes = chunks(4)
    a, b, c, d = sizes
    sched = Scheduler(sizes)
    sched.add_source("slow", None, "peer")
    assert [r.hashes for r in sched.plan(0.0)] == [(a, b, c, d)]
    sched.add_source("twin", None, "peer")
    assert sched.plan(0.1) == []  # no faster than "slow": nothing to gain from a duplicate
    sched.add_source("seeder", None, "seeder")
    (dup,) = sched.plan(0.1)
    assert dup.source_id == "seeder" and dup.hashes == (a, b, c, d)
    assert sched.received("seeder", a, 0.2) == Receipt(True, (Cancel("slow", a),))
    assert sched.received("slow", a, 0.3) == Receipt(False)  # the cancel came too late: not written twice
    assert sched.received("slow", b, 0.3) == Receipt(True, (Cancel("seeder", b),))
    assert sched.bytes_by_source() == {"slow": 64 * KiB, "twin": 0, "seeder": 64 * KiB}


def test_the_last_pieces_finish_on_the_fastest_source() -> None:
    sim = Sim(chunks(200), seeder=Fake(50 * MB, kind="seeder"), slow=Fake(1 * MB))
    took = sim.run()
    assert took < 1.2 * sum(sim.sizes.values()) / (51 * MB)  # the slow peer's 64 KiB alone takes 0.066 s
    assert sim.fakes["slow"].cancelled
    sim.check_accounts()


def test_a_peer_never_has_more_than_its_window_outstanding() -> None:
    sim = Sim(chunks(4000, 32 * KiB), seeder=Fake(50 * MB, kind="seeder"), fast=Fake(30 * MB), slow=Fake(500_000))
    sim.run()
    peer = LIMITS["peer"]
    assert max(sim.fakes["fast"].backlog) == peer.max_pieces
    assert max(sim.fakes["slow"].backlog_bytes) <= 500_000  # its window at the guessed 1 MB/s
    assert max(sim.fakes["slow"].backlog_bytes[1:]) <= peer.min_window  # every later request: measured at 0.5 MB/s
    windows = {v.source_id: v.window for v in sim.sched.sources()}
    assert windows["slow"] < windows["fast"] < windows["seeder"]
    assert max(sim.fakes["seeder"].backlog_bytes) <= LIMITS["seeder"].max_window
    sim.check_accounts()


def test_a_peer_s_advertised_window_is_respected() -> None:
    sched = Scheduler(chunks(50, 1024))
    sched.add_source("p", None, "peer", max_pieces=4)
    assert sum(len(r.hashes) for r in sched.plan(0.0)) == 4


def test_failures_back_off_exponentially_and_a_delivery_ends_the_backoff() -> None:
    sizes = chunks(10)
    sched = Scheduler(sizes)
    sched.add_source("seeder", None, "seeder")
    now, retries = 0.0, []
    for _ in range(7):
        (r,) = sched.plan(now)
        sched.failed("seeder", r.hashes, now)
        sched.failed("seeder", r.hashes, now + 0.1)  # another failure from the same outage does not count
        assert sched.plan(now + 0.2) == []
        wake = sched.wake_at(now)
        assert wake is not None
        retries.append(wake - now)
        now = wake
    assert retries == [1, 2, 4, 8, 16, BACKOFF_MAX, BACKOFF_MAX]
    (r,) = sched.plan(now)
    assert sched.received("seeder", r.hashes[0], now + 0.5).fresh
    assert "ready" in repr(sched)


def test_a_source_that_lacks_a_chunk_is_not_asked_for_it_again() -> None:
    sizes = chunks(2)
    a, b = sizes
    sched = Scheduler(sizes)
    sched.add_source("liar", None, "peer")
    assert [(r.source_id, r.hashes) for r in sched.plan(0.0)] == [("liar", (a, b))]
    sched.add_source("honest", [a], "peer")
    sched.missing("liar", [a])
    assert [(r.source_id, r.hashes) for r in sched.plan(0.1)] == [("honest", (a,))]
    assert sched.received("honest", a, 0.2).fresh and sched.received("liar", b, 0.2).fresh
    assert sched.done


def test_pieces_no_source_can_supply_are_stuck() -> None:
    sizes = chunks(3)
    a, b, c = sizes
    sched = Scheduler(sizes)
    sched.add_source("peer", [a], "peer")
    assert sched.stuck() == (b, c)
    sched.update_holdings("peer", [b])
    assert sched.stuck() == (c,)
    sched.add_source("seeder", None, "seeder")
    assert sched.stuck() == ()
    sched.remove_source("peer")
    assert sched.stuck() == ()


def test_the_seeder_is_asked_for_a_chunk_it_keeps_corrupting_only_a_few_times() -> None:
    sizes = chunks(2)
    a, b = sizes
    sched = Scheduler(sizes)
    sched.add_source("seeder", None, "seeder")
    assert [r.hashes for r in sched.plan(0.0)] == [(a, b)]
    assert sched.received("seeder", b, 0.5).fresh
    for i in range(SEEDER_CORRUPT_LIMIT):
        if i:
            assert [r.hashes for r in sched.plan(float(i))] == [(a,)]
        sched.corrupt("seeder", a)
    assert sched.plan(10.0) == []
    assert sched.stuck() == (a,)
    assert sched.dropped == {}  # the seeder is never dropped, only not asked for that chunk
    sched.add_source("peer", [a], "peer")
    assert sched.stuck() == ()
    assert [(r.source_id, r.hashes) for r in sched.plan(11.0)] == [("peer", (a,))]


def test_a_seeder_that_keeps_failing_leaves_pieces_only_it_holds_stuck() -> None:
    sizes = chunks(2)
    a, b = sizes
    sched = Scheduler(sizes)
    sched.add_source("seeder", None, "seeder")
    sched.add_source("peer", [a], "peer")
    now = 0.0
    for _ in range(GIVE_UP):
        assert sched.stuck() == ()
        for r in sched.plan(now):
            if r.source_id == "seeder":
                sched.failed("seeder", r.hashes, now)
        now += BACKOFF_MAX
    assert sched.stuck() == (b,)


def test_chunks_from_a_source_that_left_are_not_used() -> None:
    sizes = chunks(2)
    a, b = sizes
    sched = Scheduler(sizes)
    sched.add_source("p", None, "peer")
    sched.plan(0.0)
    sched.remove_source("p")
    assert sched.received("p", a, 0.1) == Receipt(False)
    assert sched.remaining == sum(sizes.values())
    assert sched.add_source("p", [b], "peer") is True  # back again: asked for what it holds
    assert [r.hashes for r in sched.plan(0.2)] == [(b,)]


def _share_sim(share: float, peers: int, peer_speed: float = 4 * MB, floor: float = PEER_FLOOR) -> Sim:
    sizes = chunks(800)  # 52 MB
    sim = Sim(sizes)
    sim.sched = Scheduler(sizes, seeder_share=share, peer_floor=floor)
    sim.add("seeder", Fake(200 * MB, kind="seeder"))
    for i in range(peers):
        sim.add(f"p{i}", Fake(peer_speed))
    return sim


def test_with_friends_online_the_seeder_sends_no_more_than_its_share() -> None:
    sim = _share_sim(0.2, peers=3)
    sim.run()
    sim.check_accounts()
    assert sim.share("seeder") <= 0.2 + (1 << 20) / sum(sim.sizes.values())
    assert all(sim.share(f"p{i}") > 0.2 for i in range(3))


def test_without_a_share_the_fast_seeder_takes_almost_everything() -> None:
    sim = _share_sim(1.0, peers=3)
    sim.run()
    assert sim.share("seeder") > 0.8


def test_friends_slower_than_the_floor_do_not_hold_the_seeder_back() -> None:
    sim = _share_sim(0.2, peers=1, peer_speed=1_000_000)  # one friend at the default upload cap
    sim.run()
    sim.check_accounts()
    assert sim.share("seeder") > 0.8


def test_with_the_admin_s_floor_at_zero_even_slow_friends_hold_the_seeder_to_its_share() -> None:
    sim = _share_sim(0.2, peers=1, peer_speed=1_000_000, floor=0)  # MIST_PEER_FLOOR=0 on the tracker
    sim.run()
    sim.check_accounts()
    assert sim.share("seeder") <= 0.2 + (1 << 20) / sum(sim.sizes.values())


def test_the_seeder_is_not_held_back_for_pieces_no_friend_holds() -> None:
    sizes = chunks(100)
    half = frozenset(list(sizes)[:50])
    sim = Sim(sizes)
    sim.sched = Scheduler(sizes, seeder_share=0.2)
    sim.add("seeder", Fake(100 * MB, kind="seeder"))
    sim.add("p0", Fake(4 * MB, holds=half))
    sim.run()
    sim.check_accounts()
    assert all(sim.by[h] == "seeder" for h in sizes if h not in half)


def test_while_friends_are_connecting_the_seeder_sends_only_its_burst_and_then_runs_free_if_none_comes() -> None:
    """Three friends on their way: together they would reach the floor."""
    sizes = chunks(200)  # 13 MB
    sched = Scheduler(sizes, seeder_share=0.2)
    sched.add_source("seeder", None, "seeder")
    sched.expect_peers(3)
    asked = [h for r in sched.plan(0.0) for h in r.hashes]
    assert 0 < sum(sizes[h] for h in asked) <= (1 << 20) + 64 * KiB
    for h in asked:
        sched.received("seeder", h, 0.1)
    assert sched.plan(0.2) == []  # held back: the friends are still being connected
    sched.expect_peers(0)  # none of them answered
    assert sum(len(r.hashes) for r in sched.plan(0.3)) > 0


def test_friends_hovering_around_the_floor_keep_holding_the_seeder_back() -> None:
    sim = _share_sim(0.2, peers=3, peer_speed=800_000)  # 2.4 MB/s together: under the floor, over 2/3 of it
    sim.run()
    sim.check_accounts()
    assert sim.share("seeder") <= 0.2 + (1 << 20) / sum(sim.sizes.values())


def test_one_friend_at_the_default_cap_does_not_hold_the_seeder_back_once_connected() -> None:
    sizes = chunks(200)
    sim = Sim(sizes)
    sim.sched = Scheduler(sizes, seeder_share=0.2)
    sim.add("seeder", Fake(100 * MB, kind="seeder"))
    sim.sched.expect_peers(1)
    sim.step()
    assert sim.fakes["seeder"].backlog[0] > 40  # one friend on its way does not stall it
    sim.sched.expect_peers(0)
    sim.add("p0", Fake(1.5 * MB))  # a compressible build: 1 MB/s on the wire is more in chunks
    sim.run()
    sim.check_accounts()
    assert sim.share("seeder") > 0.8


def test_the_share_counts_network_bytes_so_a_seeder_sending_compressed_chunks_may_send_more_of_them() -> None:
    sim = _share_sim(0.2, peers=3)
    sim.fakes["seeder"].wire_ratio = 0.25  # the seeder's chunks cross compressed to a quarter, the friends' do not
    sim.run()
    sim.check_accounts()
    wire = {name: s.wire for name, s in sim.sched._sources.items()}
    assert wire["seeder"] / sum(wire.values()) <= 0.2 + (1 << 20) / sum(wire.values())
    assert sim.share("seeder") > 0.3  # in chunk content it gave more: its bytes are cheaper
