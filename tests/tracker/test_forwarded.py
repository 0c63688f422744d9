"""Behind the nginx example every request comes from 127.0.0.1: the client's own address is taken from
X-Forwarded-For only when the direct peer is a proxy the admin trusts (MIST_TRUSTED_PROXIES), so fifty failed
logins from one place no longer refuse everyone, and no one can pick their address by sending the header."""

from __future__ import annotations

import dataclasses

import pytest

from shared.service.forwarded import TrustedProxies
from shared.service.settings import ServiceSettings
from tests.tracker.conftest import ADMIN_PASSWORD
from tracker.cli.mist_server import build_app

PROXY = TrustedProxies.parse("127.0.0.1, ::1, 172.16.0.0/12")


@pytest.mark.parametrize(("remote", "xff", "real_ip", "client"), [
    ("127.0.0.1", "203.0.113.7", "", "203.0.113.7"),  # nginx on this host
    ("172.18.0.1", "198.51.100.2, 203.0.113.7", "", "203.0.113.7"),  # the rightmost hop nginx vouched for
    ("127.0.0.1", "203.0.113.7, 172.18.0.1", "", "203.0.113.7"),  # past a trusted hop
    ("127.0.0.1", "", "203.0.113.9", "203.0.113.9"),  # X-Real-IP alone
    ("127.0.0.1", "not-an-address", "", "127.0.0.1"),  # garbage: the proxy's own address, nothing made up
    ("203.0.113.66", "10.0.0.1", "10.0.0.1", "203.0.113.66"),  # not a trusted proxy: its headers mean nothing
    ("127.0.0.1", "[2001:db8::5]", "", "2001:db8::5"),
])
def test_the_client_is_the_first_address_a_trusted_proxy_vouched_for(remote, xff, real_ip, client) -> None:
    assert PROXY.client(remote, xff, real_ip) == client


def test_a_wrong_setting_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match="MIST_TRUSTED_PROXIES must list addresses or networks"):
        TrustedProxies.parse("127.0.0.1, nginx")
    assert TrustedProxies.parse("").client("127.0.0.1", "203.0.113.7", "") == "127.0.0.1"  # none trusted


async def test_failed_logins_from_one_friend_do_not_refuse_another_behind_the_proxy(
        admin_session, aiohttp_client) -> None:
    ctx, _, _ = admin_session
    proxy = ServiceSettings(trusted_proxies=TrustedProxies.parse("127.0.0.1"))  # the test client is the proxy
    ctx.settings = dataclasses.replace(ctx.settings, service=proxy)
    client = await aiohttp_client(build_app(ctx, worker=False))
    for i in range(50):
        wrong = await client.post("/api/login", json={"user": f"nobody{i}", "password": "wrong-password"},
                                  headers={"X-Forwarded-For": "203.0.113.7"})
        assert wrong.status == 401
    refused = await client.post("/api/login", json={"user": "admin", "password": "x" * 9},
                                headers={"X-Forwarded-For": "203.0.113.7"})
    assert refused.status == 429  # the guesser's own address is refused ...
    right = await client.post("/api/login", json={"user": "admin", "password": ADMIN_PASSWORD},
                              headers={"X-Forwarded-For": "198.51.100.2"})
    assert right.status == 200  # ... and the admin, elsewhere behind the same proxy, is not
