"""Three peers in one process, linked in a line, and a signed ping across the middle one.

    alice <- bob <- carol        (bob dials alice, carol dials bob)

Alice and carol never link; alice's ping reaches carol through bob, who
relays it without being able to forge or alter it. Run:

    python examples/three_peers_ping.py
"""

from __future__ import annotations

import asyncio

from mesh.runtime.node import Node, NodeConfig
from mesh.wire.address import PeerAddress
from mesh.wire.identity import Identity


async def main() -> None:
    alice = Node(Identity.generate("alice"), NodeConfig(auto_connect=False))
    await alice.start()
    bob = Node(
        Identity.generate("bob"),
        NodeConfig(auto_connect=False, peers=[PeerAddress.parse(str(alice.address))]),
    )
    await bob.start()
    carol = Node(
        Identity.generate("carol"),
        NodeConfig(auto_connect=False, peers=[PeerAddress.parse(str(bob.address))]),
    )
    await carol.start()
    try:
        carol_key = carol.identity.public_key
        # announces flow on link-up; wait (at most 10 s) until alice knows the way
        for _ in range(200):
            if alice.router.route_to(carol_key, alice.clock()) is not None:
                break
            await asyncio.sleep(0.05)
        route = alice.router.route_to(carol_key, alice.clock())
        print(f"alice's route to carol: {route.hops if route else None} hops via bob")
        for _ in range(3):
            reply = await alice.ping(carol_key, timeout=5)
            print(f"ping carol: {reply}")
    finally:
        for node in (carol, bob, alice):
            await node.stop()


if __name__ == "__main__":
    asyncio.run(main())
