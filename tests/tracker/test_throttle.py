"""Failed logins: slowed per account, refused per account and address, never forever."""

from __future__ import annotations

import pytest

from tracker.throttle import LoginRefused, Throttle

pytestmark = pytest.mark.same_on_every_backend  # pure: the login throttle


def fail(throttle: Throttle, times: int, account: str = "admin", address: str = "10.0.0.9", now: float = 0.0) -> None:
    for _ in range(times):
        throttle.begin(account, address, now)  # a wrong password: the attempt stays counted


def delay(throttle: Throttle, account: str, address: str, now: float) -> float:
    """The wait an attempt would get now (then taken back, as a right password does)."""
    attempt = throttle.begin(account, address, now)
    throttle.succeeded(attempt)
    return attempt.delay


def test_the_first_failures_cost_nothing_then_each_answer_is_slower_up_to_a_cap() -> None:
    throttle = Throttle()
    delays = [throttle.begin("admin", "10.0.0.9", 0.0).delay for _ in range(9)]
    assert delays == [0.0, 0.0, 0.0, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_attempts_in_flight_count_before_they_are_answered() -> None:
    throttle = Throttle()
    started = [throttle.begin("admin", "10.0.0.9", 0.0) for _ in range(10)]  # 150 at once: none answered yet
    with pytest.raises(LoginRefused):
        throttle.begin("admin", "10.0.0.9", 0.0)
    assert len(started) == 10


def test_a_right_password_is_not_counted_as_a_failure() -> None:
    throttle = Throttle()
    for _ in range(20):
        throttle.succeeded(throttle.begin("admin", "10.0.0.9", 0.0))
    assert throttle.begin("admin", "10.0.0.9", 0.0).delay == 0.0


def test_ten_failures_from_one_address_refuse_that_address_until_the_window_passes() -> None:
    throttle = Throttle()
    fail(throttle, 10, now=100.0)
    with pytest.raises(LoginRefused) as refused:
        throttle.begin("admin", "10.0.0.9", 160.0)
    assert refused.value.retry_after == 840 and refused.value.status == 429
    assert delay(throttle, "admin", "10.0.0.9", 100.0 + 900.0) == 0.0  # not forever


def test_an_attacker_elsewhere_cannot_lock_the_admin_out() -> None:
    throttle = Throttle()
    fail(throttle, 10, address="203.0.113.7")
    assert delay(throttle, "admin", "192.168.1.20", 1.0) <= throttle.max_delay  # slowed, not refused


def test_one_address_trying_many_accounts_is_refused() -> None:
    throttle = Throttle()
    for i in range(50):
        fail(throttle, 1, account=f"user{i}", address="198.51.100.1")
    with pytest.raises(LoginRefused):
        throttle.begin("someone-else", "198.51.100.1", 1.0)
    assert delay(throttle, "someone-else", "198.51.100.2", 1.0) == 0.0


def test_the_right_password_clears_the_pair_but_not_the_account_slowdown() -> None:
    throttle = Throttle()
    fail(throttle, 9)
    throttle.succeeded(throttle.begin("admin", "10.0.0.9", 0.0))
    fail(throttle, 9)  # nine more would have been refused without the success in between
    assert delay(throttle, "admin", "10.0.0.9", 0.0) == throttle.max_delay
