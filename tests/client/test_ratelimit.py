"""The token bucket on a fake clock: the long-run average holds to the rate, debt is owed, unlimited never waits."""

from __future__ import annotations

import math
import random

import pytest

from client.ratelimit import TokenBucket

KiB = 1024


def transfer(bucket: TokenBucket, total: int, piece: int, start: float = 0.0) -> float:
    """Move `total` bytes in `piece`-sized reservations, waiting as told; return the time the last one went."""
    now = start
    for _ in range(total // piece):
        now += bucket.delay(piece, now)
    return now


@pytest.mark.parametrize("rate, burst, piece", [
    (1_000_000, 64 * KiB, 64 * KiB),
    (2_000_000, 256 * KiB, 64 * KiB),
    (123_456.7, 64 * KiB, 64 * KiB),
    (1_000_000, 64 * KiB, 1024 * KiB),  # pieces far larger than the burst
])
def test_average_rate_over_a_long_transfer_is_within_one_percent(rate: float, burst: int, piece: int) -> None:
    bucket = TokenBucket(rate, burst)
    total = 5000 * piece
    elapsed = transfer(bucket, total, piece, start=1000.0) - 1000.0
    assert abs(total / elapsed - rate) / rate < 0.01


def test_no_stretch_of_time_carries_more_than_the_burst_plus_the_rate() -> None:
    rng = random.Random(5)
    rate, burst = 500_000, 128 * KiB
    bucket = TokenBucket(rate, burst)
    arrival, sends = 0.0, []
    for _ in range(3000):  # callers come at uneven times, some together, some after long idle spells
        arrival += rng.choice([0.0, 0.0, 0.01, 0.2, 5.0])
        size = rng.randrange(1, 512 * KiB)
        sends.append((arrival + bucket.delay(size, arrival), size))
    assert sends == sorted(sends, key=lambda s: s[0])  # first come, first served
    # The bytes of the sends after send i, up to send j, never exceed burst + rate * (t_j - t_i).
    worst, sent, best_start = -math.inf, 0, -math.inf
    for t, size in sends:
        sent += size
        worst = max(worst, sent - rate * t + best_start)
        best_start = max(best_start, rate * t - sent)
    assert burst * 0.5 < worst <= burst + 1e-3


def test_within_the_burst_nothing_waits_and_past_it_the_wait_is_exact() -> None:
    bucket = TokenBucket(1000, 3000)
    assert bucket.delay(1000, 0.0) == 0.0
    assert bucket.delay(2000, 0.0) == 0.0
    assert bucket.delay(500, 0.0) == pytest.approx(0.5)


def test_a_reservation_larger_than_the_burst_goes_and_later_callers_wait_for_the_debt() -> None:
    bucket = TokenBucket(1000, 1000)
    assert bucket.delay(3000, 0.0) == pytest.approx(2.0)  # 1000 from the burst, 2000 owed
    assert bucket.delay(500, 0.0) == pytest.approx(2.5)  # queued behind the debt
    assert bucket.delay(500, 2.5) == pytest.approx(0.5)  # at 2.5 the debt is paid, this one is owed
    assert bucket.delay(0, 3.0) == 0.0


def test_idle_time_refills_only_up_to_the_burst() -> None:
    bucket = TokenBucket(1000, 2000)
    bucket.delay(2000, 0.0)
    assert bucket.delay(2000, 1000.0) == 0.0
    assert bucket.delay(1000, 1000.0) == pytest.approx(1.0)


def test_a_clock_that_steps_back_mints_no_tokens() -> None:
    bucket = TokenBucket(1000, 1000)
    bucket.delay(1000, 10.0)
    assert bucket.delay(1000, 5.0) == pytest.approx(1.0)
    assert bucket.delay(1000, 10.0) == pytest.approx(2.0)


def test_unlimited_never_waits() -> None:
    bucket = TokenBucket(None, 0)
    assert all(bucket.delay(10 * 1024 * KiB, 0.0) == 0.0 for _ in range(100))
    assert "unlimited" in repr(bucket)


def test_lowering_the_rate_keeps_the_debt_and_charges_it_at_the_new_rate() -> None:
    bucket = TokenBucket(1000, 0)
    assert bucket.delay(2000, 0.0) == pytest.approx(2.0)
    bucket.set_rate(500, 1.0)  # 1000 repaid at the old rate, 1000 still owed
    assert bucket.delay(0, 1.0) == pytest.approx(2.0)
    assert bucket.rate == 500.0


def test_raising_the_rate_does_not_hand_out_tokens_for_the_past() -> None:
    bucket = TokenBucket(10, 100)
    bucket.delay(100, 0.0)
    bucket.set_rate(1_000_000, 5.0)  # 5 s at 10 B/s earned 50 bytes, not 5 MB
    assert bucket.delay(50, 5.0) == 0.0
    assert bucket.delay(1000, 5.0) == pytest.approx(0.001)


def test_going_unlimited_forgives_debt_and_coming_back_starts_empty() -> None:
    bucket = TokenBucket(1000, 1000)
    bucket.delay(10_000, 0.0)
    bucket.set_rate(None, 1.0)
    assert bucket.delay(10**9, 1.0) == 0.0  # uncounted while unlimited
    bucket.set_rate(1000, 2.0)
    assert bucket.delay(500, 2.0) == pytest.approx(0.5)
    assert bucket.delay(500, 3.0) == pytest.approx(0.0)


def test_repr_shows_the_state() -> None:
    bucket = TokenBucket(1000, 1000)
    bucket.delay(1500, 4.0)
    assert repr(bucket) == "<TokenBucket 1000 B/s burst=1000 tokens=-500 at=4>"


@pytest.mark.parametrize("rate, burst", [(0, 10), (-1, 10), (float("nan"), 10), (10, -1)])
def test_nonsense_rates_and_bursts_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be|burst must be"):
        TokenBucket(rate, burst)


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        TokenBucket(10, 10).delay(-1, 0.0)
