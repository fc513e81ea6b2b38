"""Steps shared by the routing tests: small bounds, a settled network, envelopes, counters."""

from __future__ import annotations

from typing import Any

from mesh.routing.router import RouterConfig
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity
from sim.network import Network, SimNode, seed_for

# Small bounds keep every scenario tiny; jitter 0 makes announce times exact.
BASE: dict[str, Any] = {
    "seen_capacity": 1000,
    "seen_ttl": 600.0,
    "max_routes": 100,
    "route_ttl": 90.0,
    "announce_interval": 30.0,
    "announce_jitter": 0.0,
    "max_age": 3600.0,
    "max_future": 60.0,
    "link_rate": 1000.0,
    "link_burst": 1000.0,
    "ban_threshold": 100.0,
    "penalty_decay": 1.0,
    "ban_duration": 600.0,
}

GHOST = Identity.from_seed(seed_for("ghost"), "ghost")  # a peer that is on no link


def config(**overrides: Any) -> RouterConfig:
    return RouterConfig(**{**BASE, **overrides})


def settle(net: Network) -> None:
    """Let every router make its first-tick announce, so the next one is a full interval away."""
    net.advance(0)
    net.run_until_idle()


def data(node: SimNode, now: float, dest: bytes, payload: bytes = b"hello", **kw: Any) -> Envelope:
    return node.router.make(
        EnvelopeType.DATA, now, dest_kind=DestKind.PEER, dest=dest, payload=payload, **kw
    )


def flip(wire: bytes, index: int) -> bytes:
    return wire[:index] + bytes([wire[index] ^ 0x01]) + wire[index + 1 :]


def counter(node: SimNode, name: str) -> int:
    return node.router.counters.get(name, 0)


def totals(net: Network, name: str) -> dict[str, int]:
    return {n: counter(node, name) for n, node in net.nodes.items()}
