"""Test helper: two home networks behind NAT routers and a "public" network, built from Linux network namespaces.

    hostA (192.168.1.2) -- routerA (NAT) --\\
                                            pub (10.200.0.1: tracker, seeder, coturn)
    hostB (192.168.1.2) -- routerB (NAT) --/

Both homes use the same private range, as real ones do, so a client can only
reach the other through the NAT mappings (STUN) or a relay (TURN). Each router
masquerades its home behind its public address and drops unsolicited inbound
traffic; a symmetric router gives every flow a random public port
(`masquerade fully-random`), which defeats STUN hole punching. Needs root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

PUBLIC = "10.200.0.1"


def available() -> str:
    """Why these tests cannot run here, or '' if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft", "turnserver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/test installs nftables and coturn with apt-get)"
    return ""


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


@dataclass
class Network:
    tag: str

    def ns(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def exec(self, name: str) -> list[str]:
        """The command prefix that runs a program inside namespace `name` (pub, hostA, hostB, ...)."""
        return ["ip", "netns", "exec", self.ns(name)]

    def build(self, symmetric: tuple[bool, bool]) -> None:
        """`symmetric`: whether router A, router B give each flow a random port."""
        pub = self.ns("pub")
        _sh("ip", "netns", "add", pub)
        _sh("ip", "-n", pub, "link", "set", "lo", "up")
        _sh("ip", "-n", pub, "addr", "add", f"{PUBLIC}/32", "dev", "lo")
        _sh("ip", "netns", "exec", pub, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        for index, side in ((1, "A"), (2, "B")):
            router, host = self.ns(f"router{side}"), self.ns(f"host{side}")
            wan_pub, wan_router = f"10.201.{index}.1", f"10.201.{index}.2"
            for ns in (router, host):
                _sh("ip", "netns", "add", ns)
                _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "link", "add", f"{self.tag}w{side}", "netns", pub, "type", "veth", "peer", "name", "wan", "netns", router)
            _sh("ip", "-n", pub, "addr", "add", f"{wan_pub}/30", "dev", f"{self.tag}w{side}")
            _sh("ip", "-n", pub, "link", "set", f"{self.tag}w{side}", "up")
            _sh("ip", "-n", router, "addr", "add", f"{wan_router}/30", "dev", "wan")
            _sh("ip", "-n", router, "link", "set", "wan", "up")
            _sh("ip", "-n", router, "route", "add", "default", "via", wan_pub)
            _sh("ip", "link", "add", "lan", "netns", router, "type", "veth", "peer", "name", "eth0", "netns", host)
            _sh("ip", "-n", router, "addr", "add", "192.168.1.1/24", "dev", "lan")
            _sh("ip", "-n", router, "link", "set", "lan", "up")
            _sh("ip", "-n", host, "addr", "add", "192.168.1.2/24", "dev", "eth0")
            _sh("ip", "-n", host, "link", "set", "eth0", "up")
            _sh("ip", "-n", host, "route", "add", "default", "via", "192.168.1.1")
            _sh("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            rules = f"""
table ip nat {{
  chain postrouting {{ type nat hook postrouting priority 100; oifname "wan" masquerade{" fully-random" if symmetric[index - 1] else ""}; }}
}}
table ip filter {{
  chain forward {{ type filter hook forward priority 0; policy drop;
    iifname "lan" accept; ct state established,related accept; }}
  chain input {{ type filter hook input priority 0; policy accept;
    iifname "wan" ct state new drop; }}
}}
"""
            subprocess.run(["ip", "netns", "exec", router, "nft", "-f", "-"], input=rules.encode(), check=True,
                           capture_output=True)
        # Like a host on the internet, the public side has a default route: a packet for a private address (a
        # friend's host candidate) is lost on the way (router A drops it), not refused at once; coturn ends an
        # allocation whose relay socket is told "network unreachable".
        _sh("ip", "-n", pub, "route", "add", "default", "via", "10.201.1.2")

    def destroy(self) -> None:
        for name in ("hostA", "hostB", "routerA", "routerB", "pub"):
            subprocess.run(["ip", "netns", "del", self.ns(name)], capture_output=True)
