"""The address friends reach this tracker at: MIST_PUBLIC_URL (or --public-url), else one worked out from where it listens.

Friends are told it by the welcome, the /get page, invitations and Discord
news, and the seeder's address defaults to it. Behind a reverse proxy only the
admin knows it (https://mist.example.org), so it is configured. Without it, a
server on one address names that address, and a server bound to every
interface (0.0.0.0 or ::) names the machine's LAN address: 0.0.0.0 is where a
server listens, never where a friend can connect.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Iterable

from shared.errors import SettingsError

ENV = "MIST_PUBLIC_URL"
ANY = ("0.0.0.0", "::", "")


class PublicUrlError(SettingsError):
    """A configured public URL that friends could not use."""


def check(url: str) -> str:
    """The URL without a trailing slash, or PublicUrlError saying what a usable one looks like."""
    parts = urllib.parse.urlsplit(url.strip())
    example = "like https://mist.example.org or http://192.168.1.20:8700"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PublicUrlError(f"{ENV} must be an http:// or https:// address {example} (got {url!r})")
    if parts.hostname in ("0.0.0.0", "::"):
        raise PublicUrlError(
            f"{ENV} names {parts.hostname}, where a server listens but no friend can connect; "
            f"give the machine's address or domain name, {example}"
        )
    if parts.query or parts.fragment:
        raise PublicUrlError(f"{ENV} must not have a query or fragment (got {url!r}); {example}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def lan_address(addresses: Iterable[str]) -> str | None:
    """The address a friend on the same network would use: private IPv4 first, then global IPv4, then IPv6."""
    ranked: list[tuple[int, str]] = []
    for raw in addresses:
        try:
            ip = ipaddress.ip_address(raw.split("%")[0])
        except ValueError:
            continue
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            continue
        rank = (0 if ip.is_private else 1) if ip.version == 4 else (2 if ip.is_global else 3)
        ranked.append((rank, str(ip)))
    return min(ranked)[1] if ranked else None


def machine_addresses() -> list[str]:
    """Every address of this machine's interfaces (ifaddr, which the client's WebRTC already brings)."""
    import ifaddr

    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            found.append(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return found


def _origin(host: str, port: int, scheme: str = "http") -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def for_listener(host: str, port: int, configured: str = "", addresses: Iterable[str] | None = None) -> str:
    """What to tell friends: the configured URL, else the address listened on, else (all interfaces) the LAN's."""
    if configured:
        return check(configured)
    if host not in ANY:
        return _origin(host, port)
    lan = lan_address(machine_addresses() if addresses is None else addresses)
    return _origin(lan or "127.0.0.1", port)
