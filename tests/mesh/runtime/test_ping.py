"""Pings: a PONG naming the ping resolves it with the hops it took; none resolves to None."""

from __future__ import annotations

import random

from mesh.routing.router import Router, RouterConfig
from mesh.runtime.ping import PingReply, Pings, pong_for
from mesh.wire.envelope import DestKind, Envelope, EnvelopeType
from mesh.wire.identity import Identity

NOW = 1_700_000_000.0


def router(seed: bytes) -> Router:
    return Router(Identity.from_seed(seed * 32), NOW, RouterConfig(), random.Random(1))


async def test_the_pong_naming_a_ping_resolves_it() -> None:
    me, them = router(b"m"), router(b"t")
    ping = me.make(EnvelopeType.PING, NOW, dest_kind=DestKind.PEER, dest=them.identity.public_key)
    pings = Pings()

    def send(envelope: Envelope) -> None:  # the pong comes back over two links
        pings.pong(pong_for(them, envelope, NOW).with_hops(1))

    reply = await pings.send(ping, send, timeout=5)
    assert isinstance(reply, PingReply) and reply.hops == 2 and reply.rtt_ms >= 0
    pong = pong_for(them, ping, NOW)
    assert pong.type == EnvelopeType.PONG and pong.dest == me.identity.public_key
    assert pong.payload == ping.message_id


async def test_a_ping_without_a_pong_is_lost() -> None:
    me = router(b"m")
    ping = me.make(EnvelopeType.PING, NOW, dest_kind=DestKind.PEER, dest=b"t" * 32)
    assert await Pings().send(ping, lambda envelope: None, timeout=0) is None
