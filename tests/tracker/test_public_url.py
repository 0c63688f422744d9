"""What friends are told the tracker's address is: configured, the address listened on, or the LAN's, never 0.0.0.0."""

from __future__ import annotations

import pytest

from tracker.public_url import PublicUrlError, check, for_listener, lan_address

pytestmark = pytest.mark.same_on_every_backend

MACHINE = ["127.0.0.1", "::1", "fe80::1%eth0", "169.254.3.3", "203.0.113.7", "192.168.1.20", "2001:db8::5"]


def test_a_server_on_every_interface_names_the_lan_address_never_0000() -> None:
    assert lan_address(MACHINE) == "192.168.1.20"
    assert for_listener("0.0.0.0", 8700, addresses=MACHINE) == "http://192.168.1.20:8700"
    assert for_listener("::", 8700, addresses=["127.0.0.1", "203.0.113.7"]) == "http://203.0.113.7:8700"
    assert for_listener("0.0.0.0", 8700, addresses=["127.0.0.1"]) == "http://127.0.0.1:8700"  # no network at all
    assert "0.0.0.0" not in for_listener("0.0.0.0", 8700)  # this machine's own interfaces


def test_a_server_on_one_address_names_it_and_a_configured_url_wins() -> None:
    assert for_listener("127.0.0.1", 8700) == "http://127.0.0.1:8700"
    assert for_listener("::1", 8700) == "http://[::1]:8700"
    assert for_listener("0.0.0.0", 8700, "https://mist.example.org/") == "https://mist.example.org"


@pytest.mark.parametrize("bad, says", [
    ("mist.example.org", "http:// or https://"),
    ("ftp://mist.example.org", "http:// or https://"),
    ("http://0.0.0.0:8700", "no friend can connect"),
    ("https://mist.example.org/?x=1", "query"),
])
def test_an_unusable_public_url_is_refused_with_what_would_do(bad: str, says: str) -> None:
    with pytest.raises(PublicUrlError, match=says):
        check(bad)
