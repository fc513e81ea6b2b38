"""Peers found on the local network: the service record and which found peers to dial (sans-I/O).

A node announces ``_meshnotes._tcp.local.`` with DNS-SD (mesh/runtime/lan.py does the mDNS
through python-zeroconf). The TXT record carries:

- ``v``: the record's version, ``1``;
- ``id``: the node's peer id (52 base32 characters) — the dialer pins it, so the secret
  handshake still proves the key;
- ``mesh``: a tag of the network key, the first 8 bytes of a keyed BLAKE2b hash, in hex. Nodes
  of the same mesh share it; a node skips services with another tag without dialing them. The
  tag is not the key, and the key (32 random bytes) cannot be guessed from it.

:class:`LanPeers` is the table of what was found and the decision of what to dial: never
ourselves, never another mesh, never a malformed record, and not a peer already linked or being
dialed. When both ends announce, only the one with the smaller peer id dials at once, so two
nodes finding each other make one link, not two; the other dials after a grace period if no link
came. It takes the time as an argument and opens no socket.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mesh.errors import UsageError
from mesh.wire.address import PeerAddress
from mesh.wire.identity import decode_peer_id, encode_peer_id

SERVICE_TYPE = "_meshnotes._tcp.local."
RECORD_VERSION = "1"
#: a found peer is listed this long after it was last seen (announced or updated)
LAN_PEER_TTL = 15 * 60.0
#: at most this many found peers are listed
MAX_LAN_PEERS = 256
#: a found peer that should dial us (see :meth:`LanPeers.found`) and has not, after this long,
#: is dialed by us
DIAL_GRACE = 10.0


def mesh_tag(network_key: bytes) -> str:
    """The short tag of a network key that lets nodes tell their mesh's services apart."""
    digest = hashlib.blake2b(b"meshnotes lan tag", key=network_key, digest_size=8)
    return digest.hexdigest()


@dataclass(frozen=True)
class Announcement:
    """One node's service record: who it is, which mesh, where it listens."""

    peer_id: str
    tag: str
    addresses: tuple[str, ...]
    port: int

    def properties(self) -> dict[str, str]:
        """The TXT record's keys and values."""
        return {"v": RECORD_VERSION, "id": self.peer_id, "mesh": self.tag}

    @classmethod
    def from_record(
        cls, properties: Mapping[bytes, bytes | None], addresses: Iterable[str], port: int
    ) -> Announcement | None:
        """Read a found service; None when it is not a meshnotes record we understand."""
        try:
            fields = {k.decode(): (v or b"").decode() for k, v in properties.items()}
        except UnicodeDecodeError:
            return None
        if fields.get("v") != RECORD_VERSION or not 0 < port < 65536:
            return None
        peer_id, tag = fields.get("id", ""), fields.get("mesh", "")
        try:
            decode_peer_id(peer_id)
        except UsageError:
            return None
        return cls(peer_id, tag, tuple(addresses), port)


def _preference(host: str) -> int:
    """Lower is better: routable IPv4, then IPv6, then link-local; loopback never."""
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return 9
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        return 9
    if ip.is_link_local:
        return 3 if ip.version == 6 and "%" in host else 9  # v6 link-local needs its scope
    return 0 if ip.version == 4 else 1


@dataclass
class LanPeer:
    """A node of our mesh seen on the local network."""

    peer_id: str
    address: PeerAddress
    seen: float
    first_seen: float

    def status(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "address": str(self.address), "seen": round(self.seen)}


class LanPeers:
    """What the local network announced, and which of it to dial."""

    def __init__(self, own_key: bytes, tag: str, *, ttl: float = LAN_PEER_TTL) -> None:
        self.own_peer_id = encode_peer_id(own_key)
        self.tag = tag
        self.ttl = ttl
        #: whether this node announces itself (then peers with a larger id wait to be dialed)
        self.announced = False
        self.peers: dict[str, LanPeer] = {}
        self.counters: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def found(
        self,
        announcement: Announcement | None,
        now: float,
        busy: Callable[[bytes], bool] = lambda key: False,
    ) -> PeerAddress | None:
        """Record a found service; return the address to dial now, or None to leave it be.

        `busy(key)` says whether that peer is already linked or being dialed.
        """
        if announcement is None:
            self._count("lan_skipped_malformed")
            return None
        if announcement.peer_id == self.own_peer_id:
            return None
        if announcement.tag != self.tag:
            self._count("lan_skipped_other_mesh")
            return None
        hosts = sorted((h for h in announcement.addresses if _preference(h) < 9), key=_preference)
        if not hosts:
            self._count("lan_skipped_no_address")
            return None
        address = PeerAddress(hosts[0], announcement.port, decode_peer_id(announcement.peer_id))
        if announcement.peer_id not in self.peers and len(self.peers) >= MAX_LAN_PEERS:
            self.expire(now)
            if len(self.peers) >= MAX_LAN_PEERS:
                oldest = min(self.peers.values(), key=lambda p: p.seen)
                del self.peers[oldest.peer_id]
        known = self.peers.get(announcement.peer_id)
        first_seen = known.first_seen if known is not None else now
        self.peers[announcement.peer_id] = LanPeer(announcement.peer_id, address, now, first_seen)
        if busy(address.peer_key):
            return None
        if self.announced and self.own_peer_id > announcement.peer_id:
            return None  # it sees us too and dials us; to_redial covers it if it does not
        return address

    def lost(self, peer_id: str) -> None:
        """The peer said goodbye on the LAN (its service was removed)."""
        self.peers.pop(peer_id, None)

    def to_redial(self, now: float, busy: Callable[[bytes], bool]) -> list[PeerAddress]:
        """Found peers of our mesh neither linked nor being dialed (a lost link, say),
        found at least :data:`DIAL_GRACE` seconds ago."""
        return [
            p.address
            for p in self.peers.values()
            if now - p.first_seen >= DIAL_GRACE and not busy(p.address.peer_key)
        ]

    def expire(self, now: float) -> None:
        """Forget peers not seen for `ttl` seconds."""
        for peer_id in [p for p, peer in self.peers.items() if now - peer.seen > self.ttl]:
            del self.peers[peer_id]

    def status(self) -> list[dict[str, Any]]:
        return [peer.status() for peer in sorted(self.peers.values(), key=lambda p: p.peer_id)]
