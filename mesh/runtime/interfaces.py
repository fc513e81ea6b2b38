"""This host's IP addresses, and the peer addresses other devices can dial a node at.

A node listening on all interfaces (``0.0.0.0`` or ``::``) is reachable at each
of the host's addresses of that family; :func:`reachable_urls` lists them
non-loopback first (what another device can use), loopback last (this machine
only). Only the standard library is used: on Linux the interfaces' IPv4
addresses come from ``SIOCGIFADDR`` and the IPv6 ones from /proc/net/if_inet6;
everywhere, a UDP socket "connected" towards a documentation address names the
address of the default route. Connecting a UDP socket sends nothing; it only
asks the kernel's routing table.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from pathlib import Path

#: RFC 5737 / RFC 3849 documentation addresses: routed like any other, never reached
_ROUTE_PROBES = ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1"))
_SIOCGIFADDR = 0x8915
_ANY = {"0.0.0.0": socket.AF_INET, "": socket.AF_INET, "::": socket.AF_INET6}


def _linux_ipv4() -> list[str]:
    import fcntl

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
                found.append(socket.inet_ntoa(answer[20:24]))
    return found


def _linux_ipv6() -> list[str]:
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            digits = line.split()[0]
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(digits))))
    return found


def _default_route(family: socket.AddressFamily, probe: str) -> list[str]:
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((probe, 9))  # no packet leaves: a UDP connect only picks a route
        return [str(sock.getsockname()[0])]
    return []


def host_addresses(family: socket.AddressFamily) -> list[str]:
    """This host's addresses of `family`: the default route's first, then the other
    non-loopback ones, then loopback. Link-local IPv6 addresses are left out (they
    need a zone to be dialed)."""
    found: list[str] = []
    for fam, probe in _ROUTE_PROBES:
        if fam == family:
            found += _default_route(fam, probe)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            found += _linux_ipv4() if family == socket.AF_INET else _linux_ipv6()
    found.append("127.0.0.1" if family == socket.AF_INET else "::1")
    usable: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in found:
        ip = ipaddress.ip_address(text)
        if ip not in usable and not ip.is_link_local and not ip.is_unspecified:
            usable.append(ip)
    # stable: the order found, loopback moved to the end
    return [str(ip) for ip in sorted(usable, key=lambda ip: ip.is_loopback)]


def reachable_urls(host: str, port: int) -> list[str]:
    """The ``ws://HOST:PORT`` URLs a node listening on `host:port` can be dialed at,
    non-loopback first; just the one for a node listening on one address."""
    family = _ANY.get(host)
    hosts = host_addresses(family) if family is not None else [host]
    return [f"ws://[{h}]:{port}" if ":" in h else f"ws://{h}:{port}" for h in hosts]
