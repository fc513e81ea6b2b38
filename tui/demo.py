"""``meshnotes demo``: three local peers in a line, and a ping across the relay.

You (A) <- relay (B) <- third peer (C): B dials A, C dials B, A and C never
link. The demo waits until A has learned the path to C through B, then pings
C and prints each reply's round trip and hop count.
"""

from __future__ import annotations

import asyncio
import time

from mesh.address import PeerAddress
from mesh.identity import Identity, short_id
from mesh.node import Node, NodeConfig


async def run_demo(pings: int = 3, timeout: float = 15.0) -> int:
    """Run the demo, printing as it goes; return 0 when every ping was answered."""
    you = Node(Identity.generate("you"), NodeConfig(auto_connect=False))
    await you.start()
    assert you.address is not None
    relay = Node(
        Identity.generate("relay"),
        NodeConfig(auto_connect=False, peers=[PeerAddress.parse(you.address)]),
    )
    await relay.start()
    assert relay.address is not None
    third = Node(
        Identity.generate("third"),
        NodeConfig(auto_connect=False, peers=[PeerAddress.parse(relay.address)]),
    )
    await third.start()
    nodes = [third, relay, you]
    try:
        for label, node in (("you", you), ("relay", relay), ("third peer", third)):
            print(f"{label:<11} {node.identity.peer_id}  {node.listen_url}")
        print("links: you <- relay <- third peer (you and the third peer never link)")
        target = third.identity.public_key
        deadline = time.monotonic() + timeout
        while you.router.route_to(target, you.clock()) is None:
            if time.monotonic() > deadline:
                print("no route to the third peer appeared; is loopback blocked?")
                return 1
            await asyncio.sleep(0.05)
        route = you.router.route_to(target, you.clock())
        assert route is not None
        print(f"route: third peer via {short_id(relay.identity.peer_id)}, {route.hops} hops")
        answered = 0
        for _ in range(pings):
            reply = await you.ping(target, timeout=5.0)
            if reply is None:
                print("you -> third peer: no reply within 5 s")
                continue
            answered += 1
            print(
                f"you -> third peer: signed ping answered in {reply.rtt_ms:.1f} ms "
                f"over {reply.hops} hops (relayed by {short_id(relay.identity.peer_id)})"
            )
        print(f"relay counters: {relay.router.counters}")
        return 0 if answered == pings else 1
    finally:
        for node in nodes:
            await node.stop()
