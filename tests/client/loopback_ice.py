"""Test helper: let aioice offer 127.0.0.1 as a host candidate, so two clients on one machine connect.

aioice leaves the loopback address out of its host candidates; these machines
have no other reachable address between test processes in one namespace.
"""

from __future__ import annotations

import aioice.ice
import pytest


@pytest.fixture
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
