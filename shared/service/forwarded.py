"""The client's own address behind a reverse proxy, believed only from proxies the admin named.

Behind nginx every request comes from 127.0.0.1, so the login throttle, the
logs, the activity log and the metrics would see one client: fifty failed
logins from anywhere would refuse everyone's. The proxy says who it served
in X-Forwarded-For (and X-Real-IP); anyone can send those headers, so they
are read only when the request's direct peer is a proxy listed in
MIST_TRUSTED_PROXIES (addresses or networks, comma-separated; shared/service/settings.py), walking
X-Forwarded-For from the right past the trusted hops to the first address a
trusted proxy vouched for.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.service.observability import Handler

ENV = "MIST_TRUSTED_PROXIES"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "TrustedProxies":
        """`127.0.0.1, ::1, 172.16.0.0/12`; a mistake stops the service with its reason."""
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"{ENV} must list addresses or networks like 127.0.0.1 or 172.16.0.0/12, comma-separated (got {item!r})"
                ) from exc
        return cls(tuple(networks))

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(self, remote: str, forwarded_for: str, real_ip: str) -> str:
        """The address to believe for a request from `remote` carrying these headers."""
        if not remote or not self.trusts(remote):
            return remote
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if _address(hop) is None:
                break  # garbage in the chain: trust nothing left of it
            if not self.trusts(hop):
                return str(_address(hop))
        if hops and _address(hops[0]) is not None:
            return str(_address(hops[0]))  # every hop is a trusted proxy: the first is the client
        parsed = _address(real_ip)
        return str(parsed) if parsed is not None else remote


def middleware(proxies: TrustedProxies) -> Middleware:
    """The outermost middleware: the rest of the application sees the client's address as `request.remote`."""

    @web.middleware
    async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
        if proxies.networks:
            address = proxies.client(
                request.remote or "", request.headers.get("X-Forwarded-For", ""), request.headers.get("X-Real-IP", "")
            )
            if address and address != request.remote:
                request = request.clone(remote=address)
        return await handler(request)

    return real_client
